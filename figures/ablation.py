"""The ablation lesson's results: each Mixup knob around the recipe, on the demo's cell, 3 seeds.

    python figures/ablation.py            # run (or resume) every cell, then write the outputs
    python figures/ablation.py --table    # only rewrite the outputs from the finished cells

The centre is the demo's experiment (`sftmix demo`: tiny-base, 2,500 examples at 10% label
noise, 3 epochs, 300 held-out examples) with seeds 0, 1, 2: the cell where the model learns
(NTP reaches about 0.7 held-out exact match; the regime map shows SFTMix behind NTP wherever the
model is under-trained, so a sweep there would only measure under-training). One setting
changes at a time: alpha, mu, the split ratio, the pairing and the loss variant; every cell
shares the centre's reference run and dynamics. Writes

    figures/ablation.csv                          one row per (param, value, seed), NTP rows too
    figures/ablation.md                           paired differences to the recipe, runtime
    figures/ablation_effects.png/.pdf             the paired differences with 95% t-intervals
    figures/ablation_sweep_exact_match.png/.pdf   the metric against each knob

Run it on one core: OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE nice -n 5 python figures/ablation.py
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib.pyplot as plt  # noqa: E402

from sftmix import RunDir  # noqa: E402
from sftmix.io import atomic_write, atomic_write_text  # noqa: E402
from sftmix.pipeline import (  # noqa: E402
    EXPECTATIONS,
    LESSON_SEEDS,
    effects_table,
    lesson_config,
    load_ablation,
    plot_sweep,
    run_ablation,
    shipped_sweep,
    summary_markdown,
)
from sftmix.viz import plot_ablation_effects, save_figure  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = list(LESSON_SEEDS)
#: Values besides the centre (alpha 0.5, mu 0.2, ratio 0.5, confident x unconfident, NTP + mu Mixup).
SWEEP = shipped_sweep()
METRICS = {"exact_match": True, "nll": False}  # name -> higher is better


def runtime(run: Path) -> float:
    """Seconds of every stage recorded in the run directory (the ablation cells are stages too;
    runs made before they were keep their seconds in the cells' cell.json)."""
    rd = RunDir(run)
    stages = sum(json.loads(f.read_text()).get("seconds", 0.0) for f in rd.stages.glob("*.json"))
    older = sum(json.loads(f.read_text()).get("seconds", 0.0) for f in rd.ablation.glob("*/seed*/cell.json"))
    return stages + older


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="only rewrite the outputs from finished cells")
    ap.add_argument("--runs-dir", default=str(HERE.parent / "runs"))
    ap.add_argument("--out", default=str(HERE / "ablation"), help="output path without suffix")
    args = ap.parse_args(argv)
    config = lesson_config(args.runs_dir)
    start = time.time()
    results = load_ablation(config.run_dir) if args.table else run_ablation(config, SWEEP, SEEDS)
    out = Path(args.out)
    atomic_write(out.with_suffix(".csv"), lambda tmp: results.to_csv(tmp, index=False))
    fig = plt.figure(figsize=(13.0, 6.0), layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    for ax, (metric, higher) in zip(axes, METRICS.items()):
        plot_ablation_effects(effects_table(results, metric), metric=metric, higher_is_better=higher, ax=ax,
                              title=f"{metric} ({'higher' if higher else 'lower'} is better)")
    fig.suptitle(f"Each setting minus the recipe (alpha 0.5, mu 0.2, median split, confident x unconfident), "
                 f"paired by seed, 95% t-intervals over {len(SEEDS)} seeds; demo cell", fontsize=10)
    save_figure(fig, out.with_name(out.name + "_effects"))
    plt.close(fig)
    sweep = plot_sweep(results, "exact_match", error="ci95")
    save_figure(sweep, out.with_name(out.name + "_sweep_exact_match"))
    seconds = runtime(config.run_dir)
    atomic_write_text(out.with_suffix(".md"), markdown(results, config, seconds, out.name))
    atomic_write_text(out.with_name(out.name + "_meta.json"), json.dumps({
        "seconds": round(seconds), "seeds": SEEDS, "sweep": SWEEP, "data": config.data,
        "epochs": config.training["num_train_epochs"],
        "how": "one CPU thread (OMP_NUM_THREADS=1) of a 2-core machine shared with other jobs"}, indent=1) + "\n")
    print(out.with_suffix(".md").read_text())
    print(f"this call: {time.time() - start:.0f} s")


def markdown(results, config, seconds: float, stem: str) -> str:
    d = config.data
    lines = ["# Ablations around the recipe, on the demo's cell", "",
             f"Built-in suite, `tiny-base`, n_train={d['n_train']}, label noise {d['noise']}, "
             f"{config.training['num_train_epochs']} epochs, {d['n_test']} held-out examples, seeds {SEEDS}; one "
             "setting changed at a time, every cell paired with the recipe by seed (same base weights, same "
             "data order). Made by `python figures/ablation.py`; the rows are in "
             f"[{stem}.csv]({stem}.csv).", "",
             f"Measured runtime of every stage and cell of this sweep: **{seconds / 60:.0f} min** "
             f"({seconds:.0f} s; one CPU thread, `OMP_NUM_THREADS=1`, on a 2-core machine shared with other jobs).",
             "", "What each knob should change:", ""]
    lines += [f"- **{k}**: {v}." for k, v in EXPECTATIONS.items()]
    lines += ["", summary_markdown(results), f"![paired differences]({stem}_effects.png)", "",
              f"![exact match against each knob]({stem}_sweep_exact_match.png)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
