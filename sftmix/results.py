"""The results table: per method mean and spread over seeds, and the paired comparison.

Claims are made only when the data support them: the SFTMix-minus-NTP difference is
computed per seed (same seed, same base weights), and a difference is called an
improvement only when its 95% t-interval over seeds excludes zero.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from pathlib import Path

import numpy as np

METRICS = {  # name -> (label, higher is better)
    "exact_match": ("exact match", True),
    "nll": ("held-out NLL", False),
    "token_accuracy": ("token accuracy", True),
    "ece": ("ECE", False),
}
# Two-sided 95% t quantiles for n-1 degrees of freedom (n = 2..10); normal beyond.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def paired_difference(a, b, *, higher_is_better: bool = True) -> dict:
    """``b - a`` per seed with mean, std, 95% t-interval and a verdict."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = len(d)
    mean, std = mean_std(d)
    half = _T95.get(n - 1, 1.96) * std / math.sqrt(n) if n > 1 else float("inf")
    lo, hi = mean - half, mean + half
    if n < 2 or lo <= 0 <= hi:
        verdict = "no clear difference"
    else:
        better = (mean > 0) == higher_is_better
        verdict = "SFTMix better" if better else "NTP better"
    return {"mean": mean, "std": std, "ci95": [lo, hi], "n": n, "verdict": verdict, "per_seed": d.tolist()}


def collect_evals(run: Path, methods, seeds) -> dict:
    out = {}
    for method in methods:
        for seed in seeds:
            f = Path(run) / method / f"seed{seed}" / "eval.json"
            if f.exists():
                out.setdefault(method, {})[seed] = json.loads(f.read_text())
    return out


def build_results(run: Path, config, *, stage_seconds: dict | None = None) -> dict:
    """Results dict from the eval.json files of a run directory."""
    import sftmix
    import torch
    import transformers

    evals = collect_evals(run, config.methods, config.seeds)
    summary = {}
    for method, by_seed in evals.items():
        summary[method] = {m: dict(zip(("mean", "std"), mean_std([e[m] for e in by_seed.values() if m in e])))
                           for m in METRICS if any(m in e for e in by_seed.values())}
        tasks = sorted({t for e in by_seed.values() for t in e.get("exact_match_by_task", {})})
        summary[method]["by_task"] = {t: dict(zip(("mean", "std"), mean_std(
            [e["exact_match_by_task"][t] for e in by_seed.values() if t in e.get("exact_match_by_task", {})])))
            for t in tasks}
    comparison = {}
    if "ntp" in evals and "sftmix" in evals:
        seeds = sorted(set(evals["ntp"]) & set(evals["sftmix"]))
        for m, (_, higher) in METRICS.items():
            if all(m in evals[x][s] for x in ("ntp", "sftmix") for s in seeds) and seeds:
                comparison[m] = paired_difference([evals["ntp"][s][m] for s in seeds],
                                                  [evals["sftmix"][s][m] for s in seeds], higher_is_better=higher)
    return {
        "name": config.name, "seeds": list(config.seeds), "summary": summary, "comparison": comparison,
        "per_seed": {m: {str(s): {k: v for k, v in e.items() if k != "exact_match_by_task"}
                         for s, e in by_seed.items()} for m, by_seed in evals.items()},
        "config": dataclasses.asdict(config),
        "versions": {"sftmix": sftmix.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
        "stage_seconds": stage_seconds or {},
        "wall_seconds": round(sum((stage_seconds or {}).values()), 1),
    }


def _fmt(stat: dict, digits: int = 3) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def results_markdown(results: dict) -> str:
    """The results table as Markdown (mean ± sample std over seeds)."""
    summary, comparison = results["summary"], results["comparison"]
    methods = list(summary)
    seeds = results["seeds"]
    lines = [f"# Results: {results['name']}", "",
             f"Mean ± standard deviation over seeds {seeds} (n={len(seeds)}); held-out data.", "",
             "| metric | " + " | ".join(m.upper() if m == "ntp" else "SFTMix" for m in methods)
             + (" | SFTMix − NTP (paired, 95% CI) | verdict |" if comparison else " |"),
             "|---" * (len(methods) + 1 + (2 if comparison else 0)) + "|"]
    for m, (label, higher) in METRICS.items():
        if not all(m in summary[x] for x in methods):
            continue
        row = f"| {label} ({'↑' if higher else '↓'}) | " + " | ".join(_fmt(summary[x][m]) for x in methods)
        if m in comparison:
            c = comparison[m]
            row += f" | {c['mean']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] | {c['verdict']}"
        lines.append(row + " |")
    tasks = sorted({t for x in methods for t in summary[x].get("by_task", {})})
    if tasks:
        lines += ["", "Exact match per task (mean ± std over seeds):", "",
                  "| task | " + " | ".join(m.upper() if m == "ntp" else "SFTMix" for m in methods) + " |",
                  "|---" * (len(methods) + 1) + "|"]
        for t in tasks:
            lines.append(f"| {t} | " + " | ".join(_fmt(summary[x]["by_task"][t], 2)
                                                  if t in summary[x]["by_task"] else "–" for x in methods) + " |")
    if results.get("stage_seconds"):
        lines += ["", f"Wall time of the stages run for this directory: {results['wall_seconds']:.0f} s."]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items())]
    return "\n".join(lines) + "\n"


def write_results(run: Path, results: dict) -> None:
    from .training import write_json

    write_json(Path(run) / "results.json", results)
    tmp = Path(run) / ".results.md.tmp"
    tmp.write_text(results_markdown(results))
    tmp.replace(Path(run) / "results.md")
