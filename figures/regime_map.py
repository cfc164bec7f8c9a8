"""Where does SFTMix help? Runs the regime map and writes its table and heatmap.

    python figures/regime_map.py                 # run (or resume) every cell, then write the outputs
    python figures/regime_map.py --table         # only rebuild the outputs from finished cells
    python figures/regime_map.py --from-csv      # redraw from the shipped figures/regime_map.csv (no runs needed)
    python figures/regime_map.py --n-train 150 600 2500 --noise 0 0.1 0.3 --epochs 3 8

One experiment per cell of n_train x noise x epochs from configs/regime/base.yaml (5 seeds,
NTP and SFTMix paired per seed). Writes figures/regime_map.md (table, verdicts, the number
of comparisons and the Holm correction), figures/regime_map.png/.pdf and
figures/regime_map.csv (one row per cell, method and seed).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402

from sftmix.analysis import markdown_table  # noqa: E402
from sftmix.io import atomic_write, atomic_write_text  # noqa: E402
from sftmix.pipeline import RegimeGrid, regime_configs, regime_table, run_regime, summarize_regime  # noqa: E402
from sftmix.viz import plot_regime_map, save_figure  # noqa: E402

HERE = Path(__file__).resolve().parent
BASE = HERE.parent / "configs" / "regime" / "base.yaml"


def main(argv=None):
    grid = RegimeGrid()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="only rebuild the outputs from finished cells")
    ap.add_argument("--from-csv", nargs="?", const=str(HERE / "regime_map.csv"), default=None, metavar="CSV",
                    help="redraw from a CSV (one row per cell, method and seed; default: the shipped "
                         "figures/regime_map.csv) instead of the run directories")
    ap.add_argument("--runs-dir", default=str(HERE.parent / "runs"))
    ap.add_argument("--n-train", type=int, nargs="+", default=grid.n_train)
    ap.add_argument("--noise", type=float, nargs="+", default=grid.noise)
    ap.add_argument("--epochs", type=int, nargs="+", default=grid.epochs)
    ap.add_argument("--out", default=str(HERE / "regime_map"), help="output path without suffix")
    args = ap.parse_args(argv)
    grid = RegimeGrid(n_train=args.n_train, noise=args.noise, epochs=args.epochs)
    start = time.time()
    out = Path(args.out)
    if args.from_csv:
        if not Path(args.from_csv).is_file():
            print(f"regime_map.py: error: {args.from_csv}: no such file", file=sys.stderr)
            raise SystemExit(2)
        table = pd.read_csv(args.from_csv)
    elif args.table:
        table = regime_table(regime_configs(BASE, grid, runs_dir=args.runs_dir))
    else:
        table = run_regime(BASE, grid, runs_dir=args.runs_dir)
    atomic_write(out.with_suffix(".csv"), lambda tmp: table.to_csv(tmp, index=False))
    summary = summarize_regime(table)
    if summary.empty:
        print("no finished cells yet")
        return
    save_figure(plot_regime_map(summary, grid={"n_train": grid.n_train, "noise": grid.noise, "epochs": grid.epochs}),
                out)
    atomic_write_text(out.with_suffix(".md"), markdown(summary, grid, table))
    print(out.with_suffix(".md").read_text())
    print(f"{time.time() - start:.0f} s")


def markdown(summary, grid, table) -> str:
    n_cells = len(grid.cells)
    done = summary.groupby(["n_train", "noise", "epochs"]).ngroups
    seeds = sorted(int(s) for s in table["seed"].unique())
    lines = ["# Where does SFTMix help? The regime map", "",
             f"Built-in suite, shipped `tiny-base`, one full experiment per cell (reference run, dynamics, "
             f"median split, NTP and SFTMix from the same base weights), seeds {seeds}. Cells finished: "
             f"{done} of {n_cells}. Made by `python figures/regime_map.py` (base config "
             "`configs/regime/base.yaml`).", "",
             f"Each row compares SFTMix with NTP on one held-out metric, paired by seed: the mean difference "
             f"SFTMix − NTP, its exact 95% t-interval, the paired t-test p-value and the Holm-adjusted p-value "
             f"over all **{len(summary)} comparisons** in this table. A verdict needs the Holm-adjusted p < 0.05; "
             "`CI excl. 0` says whether the unadjusted interval excludes zero.", "",
             "In the heatmap each cell is coloured by the difference it prints (blue: SFTMix better, for every "
             "metric), the rows line up across panels, and hatched cells were not run.", ""]
    lines += markdown_table(
        ["n_train", "noise", "epochs", "metric", "NTP", "SFTMix", "SFTMix − NTP [95% CI]", "p", "p (Holm)",
         "CI excl. 0", "verdict"],
        ([r.n_train, f"{r.noise:g}", r.epochs, r.metric, f"{r.ntp:.3f}", f"{r.sftmix:.3f}",
          f"{r.diff:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]", f"{r.p:.3f}", f"{r.p_holm:.3f}",
          "yes" if r.ci_excludes_zero else "no", r.verdict] for r in summary.itertuples()))
    count = summary["verdict"].value_counts()
    lines += ["", f"**As measured:** of {len(summary)} comparisons, SFTMix is better in "
              f"{count.get('SFTMix better', 0)}, NTP is better in {count.get('NTP better', 0)} and "
              f"{count.get('no clear difference', 0)} show no clear difference after the Holm correction; "
              f"{int(summary['ci_excludes_zero'].sum())} unadjusted intervals exclude zero.", "",
              "![regime map](regime_map.png)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
