"""Two of the paper's claims on our toy, beside the paper's numbers (never mixed into one table).

    python figures/paper_claims.py                    # the 600-example cell: runs what is missing, then writes
    python figures/paper_claims.py --n-train 2500 --out figures/paper_claims_n2500   # the demo-sized cell

Finished runs are read, not trained again (the trained models are rescored for (b)).
``--from-csv`` redraws the figure and table from the cell's shipped CSVs (``figures/paper_claims_role.csv`` and
``_spread.csv``; ``figures/paper_claims_n2500_*.csv`` for ``--n-train 2500``), or from ``--from-csv PREFIX``'s
``PREFIX_role.csv`` and ``PREFIX_spread.csv``, and writes to ``--out`` (a path prefix, or a folder).

(a) The role-of-Mixup ablation (NTP only / NTP + 0.2 Mixup / equal weights / Mixup only) and
(b) the claim that SFTMix lowers the spread of per-example confidence (paper: about 7% lower
standard deviation), both on one cell of the regime map (configs/regime/base.yaml with
n_train, noise and epochs below; 5 seeds). Writes figures/paper_claims.md and
figures/paper_claims.png/.pdf (``--out`` for another cell, e.g. figures/paper_claims_n2500).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402

from sftmix.analysis import (  # noqa: E402
    PAPER_CITATION,
    PAPER_RESULTS,
    format_interval,
    markdown_table,
    mean_std,
    paired_difference,
)
from sftmix.io import atomic_write, atomic_write_text  # noqa: E402
from sftmix.pipeline import RegimeGrid, confidence_spread, regime_configs, role_of_mixup  # noqa: E402
from sftmix.viz import plot_paper_claims, save_figure  # noqa: E402

HERE = Path(__file__).resolve().parent
BASE = HERE.parent / "configs" / "regime" / "base.yaml"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", default=str(HERE.parent / "runs"))
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=None, help="where to write: a path prefix (PREFIX.md, PREFIX.png, "
                    "PREFIX_role.csv, ...) or an existing folder (default: figures/paper_claims[_n<N>])")
    ap.add_argument("--from-csv", nargs="?", const="", default=None, metavar="PREFIX",
                    help="redraw from PREFIX_role.csv and PREFIX_spread.csv (no runs needed; default: the cell's "
                         "shipped CSVs in figures/)")
    args = ap.parse_args(argv)
    start = time.time()
    grid = RegimeGrid(n_train=[args.n_train], noise=[args.noise], epochs=[args.epochs])
    (_, config), = regime_configs(BASE, grid, runs_dir=args.runs_dir)
    shipped = cell_prefix(args.n_train)
    out = Path(args.out) if args.out else shipped
    if out.is_dir():
        out = out / shipped.name
    if args.from_csv is not None:
        source = Path(args.from_csv) if args.from_csv else shipped
        role, spread = (read_csv(source, part) for part in ("role", "spread"))
    else:
        role = role_of_mixup(config)
        spread = confidence_spread(config)
    for part, frame in (("role", role), ("spread", spread)):
        atomic_write(out.with_name(f"{out.name}_{part}.csv"), lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
    save_figure(plot_paper_claims(role, spread), out)
    atomic_write_text(out.with_suffix(".md"), markdown(role, spread, config, image=out.with_suffix(".png").name))
    print(out.with_suffix(".md").read_text())
    print(f"{time.time() - start:.0f} s")


def cell_prefix(n_train: int) -> Path:
    """Where a cell's files are shipped: figures/paper_claims (600 examples), figures/paper_claims_n<N>."""
    return HERE / ("paper_claims" if n_train == 600 else f"paper_claims_n{n_train}")


def read_csv(prefix: Path, part: str) -> pd.DataFrame:
    path = prefix.with_name(f"{prefix.name}_{part}.csv")
    if not path.is_file():
        print(f"paper_claims.py: error: {path}: no such file (--from-csv reads PREFIX_role.csv and PREFIX_spread.csv; "
              "without PREFIX the cell's shipped files in figures/)", file=sys.stderr)
        raise SystemExit(2)
    return pd.read_csv(path)


def markdown(role: pd.DataFrame, spread: pd.DataFrame, config, image: str = "paper_claims.png") -> str:
    seeds = sorted(int(s) for s in role["seed"].unique())
    d = config.data
    lines = ["# The paper's analysable claims, on the toy suite", "",
             f"Setting: built-in suite, `tiny-base`, n_train={d['n_train']}, label noise {d['noise']}, "
             f"{config.training['num_train_epochs']} epochs, seeds {seeds} (a cell of the regime map). "
             "Made by `python figures/paper_claims.py`. Our numbers and the paper's are in separate tables: "
             "they measure different things (held-out exact match on a toy suite vs LLM-judged benchmarks).", "",
             "## (a) The role of Mixup", "",
             "Ours: mean ± std over seeds; the difference to NTP only is paired by seed with its exact 95% "
             "t-interval.", ""]
    rows = []
    ntp = role[role["variant"] == "NTP only"].set_index("seed")
    for variant, part in role.groupby("variant", sort=False):
        part = part.set_index("seed")
        cells = []
        for m in ("exact_match", "nll", "ece"):
            mean, std = mean_std(part[m].tolist())
            cells.append(f"{mean:.3f} ± {std:.3f}")
        common = sorted(set(part.index) & set(ntp.index))
        diff = "—" if variant == "NTP only" else format_interval(paired_difference(
            ntp.loc[common, "exact_match"].tolist(), part.loc[common, "exact_match"].tolist()))
        rows.append([variant, *cells, diff])
    lines += markdown_table(["variant", "exact match (↑)", "held-out NLL (↓)", "ECE (↓)",
                             "Δ exact match vs NTP [95% CI]"], rows)
    paper = PAPER_RESULTS["role of Mixup (Llama-3.1-8B, Alpaca-52K)"]
    lines += ["", f"The paper (Llama-3.1-8B on Alpaca-52K; {PAPER_CITATION}):", ""]
    lines += markdown_table(["variant", *paper["metrics"]],
                            ([label, *(f"{v:g}" for v in values)] for (label, _), values in paper["rows"].items()))
    lines += ["", "## (b) Spread of per-example confidence after training", "",
              "Every training example rescored with each trained model. Confidence = −perplexity of the "
              "response (the paper's definition); because perplexity is heavy-tailed (a few corrupted answers "
              "have perplexities in the hundreds), the spread of log-perplexity is shown beside it. "
              "Ratio = std under SFTMix / std under NTP, paired by seed.", ""]
    summaries = []
    for column in ("confidence_std", "log_ppl_std"):
        wide = spread.pivot(index="seed", columns="method", values=column).dropna()
        summaries.append((column, wide, wide["sftmix"] / wide["ntp"]))
    (_, conf, conf_ratio), (_, logp, logp_ratio) = summaries
    lines += markdown_table(
        ["seed", "std of confidence: NTP", "SFTMix", "ratio", "std of log-perplexity: NTP", "SFTMix", "ratio"],
        ([seed, f"{conf.loc[seed, 'ntp']:.4f}", f"{conf.loc[seed, 'sftmix']:.4f}", f"{conf_ratio[seed]:.3f}",
          f"{logp.loc[seed, 'ntp']:.4f}", f"{logp.loc[seed, 'sftmix']:.4f}", f"{logp_ratio[seed]:.3f}"]
         for seed in conf.index))
    lines.append("")
    for label, ratios in (("confidence", conf_ratio), ("log-perplexity", logp_ratio)):
        if not len(ratios):
            continue
        mean, std = mean_std(ratios.tolist())
        change = paired_difference([1.0] * len(ratios), ratios.tolist(), higher_is_better=False)
        verdict = {"SFTMix better": "lower spread under SFTMix", "NTP better": "higher spread under SFTMix"}.get(
            change["verdict"], change["verdict"])
        lines.append(f"- Std of {label}: mean ratio {mean:.3f} ± {std:.3f} over {len(ratios)} seeds "
                     f"({(mean - 1) * 100:+.1f}% under SFTMix); ratio − 1 with its 95% interval "
                     f"{format_interval(change)}: {verdict}.")
    lines += ["", "The paper reports about 7% lower standard deviation of confidence for SFTMix "
              "(Xiao et al., arXiv:2410.05248).", ""]
    lines += ["In the figure, (a) our bars start at zero, with 95% t-intervals over seeds and every seed as a dot; "
              "(b) the paper's four variants on both of its benchmarks, each as a share of NTP only's score "
              "(the two benchmarks order the variants differently: Mixup only is second on MT-Bench and last on "
              "AlpacaEval-2 LC WR); (c) the ratio of the spreads per seed with its interval, beside the "
              "paper's 7%.", "", f"![paper claims]({image})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
