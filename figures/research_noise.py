"""Does SFTMix beat NTP under label noise? Runs the six configs in configs/research/.

    python figures/research_noise.py            # runs (or resumes) them, then writes the table
    python figures/research_noise.py --table    # only rebuild the table from finished runs

Writes figures/research_noise.md (table + caption) and figures/research_noise.png.
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from sftmix.pipeline.experiment import ExperimentConfig, run_experiment
from sftmix.viz.plots import plot_ablation, save_figure

HERE = Path(__file__).resolve().parent
CONFIGS = sorted((HERE.parent / "configs" / "research").glob("noise*.yaml"), key=lambda p: (len(p.stem), p.stem))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="only rebuild the table from finished runs")
    ap.add_argument("--runs-dir", default=str(HERE.parent / "runs"))
    args = ap.parse_args(argv)
    rows, per_seed = [], []
    for path in CONFIGS:
        config = ExperimentConfig.from_yaml(path, runs_dir=args.runs_dir)
        if not args.table:
            run_experiment(config)
        results_file = config.run_dir / "results.json"
        if not results_file.exists():
            print(f"skipping {path.name}: no results yet", file=sys.stderr)
            continue
        res = json.loads(results_file.read_text())
        noise, n = config.data["noise"], config.data["n_train"]
        for metric in ("exact_match", "ece", "nll"):
            c = res["comparison"][metric]
            rows.append({"noise": noise, "n_train": n, "metric": metric,
                         "NTP": res["summary"]["ntp"][metric], "SFTMix": res["summary"]["sftmix"][metric],
                         "diff": c["mean"], "lo": c["ci95"][0], "hi": c["ci95"][1], "verdict": c["verdict"]})
        for method in ("ntp", "sftmix"):
            for seed, ev in res["per_seed"][method].items():
                per_seed.append({"param": f"noise (n={n})", "value": noise, "seed": int(seed),
                                 "method": method, **{k: ev[k] for k in ("exact_match", "ece", "nll")}})
    write_table(rows)
    if per_seed:
        write_figure(pd.DataFrame(per_seed))


def write_table(rows):
    lines = ["# SFTMix vs NTP under label noise (built-in suite, tiny Llama, 5 seeds)", "",
             "Each cell: mean ± std over seeds 0-4 of the held-out metric; the difference is SFTMix − NTP, "
             "paired by seed, with its 95% t-interval. A verdict other than 'no clear difference' needs the "
             "interval to exclude zero. Made by `python figures/research_noise.py` "
             "(configs in configs/research/).", "",
             "| noise | n_train | metric | NTP | SFTMix | SFTMix − NTP [95% CI] | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['noise']:.1f} | {r['n_train']} | {r['metric']} | {r['NTP']['mean']:.3f} ± "
                     f"{r['NTP']['std']:.3f} | {r['SFTMix']['mean']:.3f} ± {r['SFTMix']['std']:.3f} | "
                     f"{r['diff']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] | {r['verdict']} |")
    if rows:
        count = lambda v: sum(r["verdict"] == v for r in rows)
        lines += ["", f"**Answer, as measured:** across {len(rows)} (setting, metric) cells SFTMix is better in "
                  f"{count('SFTMix better')}, NTP is better in {count('NTP better')}, and the paired interval covers "
                  f"zero in {count('no clear difference')}. On this suite with a tiny model, SFTMix does not beat "
                  "NTP on held-out accuracy or calibration at any noise level we tried; where a difference is "
                  "clear it favours NTP (held-out NLL at 500 examples). The paper's gains were measured on "
                  "7-14B models with LLM-judged benchmarks, a regime this experiment does not reach.",
                  "", "![SFTMix vs NTP under label noise](research_noise.png)"]
    (HERE / "research_noise.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_figure(frame):
    """Held-out exact match and NLL vs label noise, NTP and SFTMix, mean ± std over seeds."""
    sizes = sorted(frame["param"].unique(), key=lambda p: int(p.split("=")[1].rstrip(")")))
    fig, axes = plt.subplots(2, len(sizes), figsize=(5.2 * len(sizes), 7), layout="constrained", squeeze=False)
    colors = {"ntp": "#000000", "sftmix": "#0072B2"}
    for col, param in enumerate(sizes):
        for row, metric in enumerate(("exact_match", "nll")):
            ax = axes[row, col]
            for k, method in enumerate(("ntp", "sftmix")):
                sub = frame[(frame.param == param) & (frame.method == method)]
                stats = sub.groupby("value")[metric].agg(["mean", "std"])
                x = stats.index.to_numpy() + (k - 0.5) * 0.012  # side by side, not on top
                ax.errorbar(x, stats["mean"], yerr=stats["std"], marker="o", capsize=4, color=colors[method],
                            label=f"{'NTP' if method == 'ntp' else 'SFTMix'} (mean ± std, 5 seeds)")
                ax.scatter(sub["value"] + (k - 0.5) * 0.012, sub[metric], s=10, alpha=0.3, color=colors[method])
            ax.set_xticks(sorted(frame["value"].unique()))
            ax.set_xlabel("label-noise rate of the training set")
            ax.set_ylabel("held-out exact match (↑)" if metric == "exact_match" else "held-out NLL (↓)")
            ax.set_title(f"{param.split('(')[1].rstrip(')')} training examples")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    save_figure(fig, HERE / "research_noise")
    plt.close(fig)


if __name__ == "__main__":
    main()
