"""The results table: per method mean and spread over seeds, and the paired comparison.

Claims are made only when the data support them: the SFTMix-minus-NTP difference is
computed per seed (same seed, same base weights), and a difference is called an
improvement only when its 95% t-interval over seeds excludes zero.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path

import pandas as pd
import torch
import transformers

from ..constants import __version__
from ..io import RunDir, atomic_write_json, atomic_write_text
from .markdown import markdown_document, markdown_table
from .noise import noise_auroc
from .stats import format_interval, mean_std, paired_difference

__all__ = ["METRICS", "build_results", "collect_evals", "results_markdown", "write_results"]


METRICS = {  # name -> (label, higher is better)
    "exact_match": ("exact match", True),
    "nll": ("held-out NLL", False),
    "token_accuracy": ("token accuracy", True),
    "ece": ("ECE", False),
}
def collect_evals(run: Path, methods, seeds) -> dict:
    out = {}
    for method in methods:
        for seed in seeds:
            f = RunDir(run).eval_file(method, seed)
            if f.exists():
                out.setdefault(method, {})[seed] = json.loads(f.read_text())
    return out


def build_results(run: Path, config, *, stage_seconds: dict | None = None) -> dict:
    """Results dict from the eval.json files of a run directory."""
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
    dynamics = _dynamics_summary(run)
    if dynamics:  # whose confidences split the data (the trained model's, or another family's)
        dynamics["reference_model"] = config.model_args(reference=True).model_name_or_path
        dynamics["trained_model"] = config.model_args().model_name_or_path
    fit_file = RunDir(run).fit
    fit = pd.read_csv(fit_file).astype(object).where(lambda f: f.notna(), None).to_dict(orient="records") \
        if fit_file.exists() else []
    return {
        "name": config.name, "seeds": list(config.seeds), "summary": summary, "comparison": comparison,
        "dynamics": dynamics, "fit": fit,
        "per_seed": {m: {str(s): {k: v for k, v in e.items() if k != "exact_match_by_task"}
                         for s, e in by_seed.items()} for m, by_seed in evals.items()},
        "config": dataclasses.asdict(config),
        "versions": {"sftmix": __version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
        "stage_seconds": stage_seconds or {},
        "wall_seconds": round(sum((stage_seconds or {}).values()), 1),
    }


def _dynamics_summary(run: Path) -> dict:
    """What the reference run's dynamics say about the training data (label noise, spread)."""
    path = RunDir(run).dynamics
    if not path.exists():
        return {}
    table = pd.read_parquet(path)
    out = {"n_examples": len(table), "confidence_std": float(table["confidence"].std())}
    if "noisy" in table.columns and table["noisy"].any():
        out["n_noisy"] = int(table["noisy"].sum())
        out["noise_auroc"] = noise_auroc(table)
    return out


def _generations_cut(results: dict) -> str | None:
    """One line: how many greedy generations reached max_new_tokens (were cut), per method."""
    parts, budget = [], None
    for method, by_seed in results.get("per_seed", {}).items():
        evals = [e for e in by_seed.values() if "n_generations_cut" in e]
        if evals:
            budget = evals[0].get("max_new_tokens")
            cut, total = sum(e["n_generations_cut"] for e in evals), sum(e["n_examples"] for e in evals)
            parts.append(f"{'NTP' if method == 'ntp' else 'SFTMix'} {cut} of {total}")
    if not parts:
        return None
    return f"Generations cut at max_new_tokens={budget} (no end of turn), over all seeds: " + ", ".join(parts) + "."


def _fmt(stat: dict, digits: int = 3) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def results_markdown(results: dict) -> str:
    """The results table as Markdown (mean ± sample std over seeds)."""
    summary, comparison = results["summary"], results["comparison"]
    methods = list(summary)
    seeds = results["seeds"]
    names = [m.upper() if m == "ntp" else "SFTMix" for m in methods]
    lines = [f"# Results: {results['name']}", ""]
    if not methods:
        lines.append("Nothing was evaluated: this run has no held-out data (give the data section an "
                     "`eval_dataset`, or a `held_out_size` for data without one).")
    else:
        lines += [f"Mean ± standard deviation over seeds {seeds} (n={len(seeds)}); held-out data.", ""]
        rows = []
        for m, (label, higher) in METRICS.items():
            if not all(m in summary[x] for x in methods):
                continue
            row = [f"{label} ({'↑' if higher else '↓'})", *(_fmt(summary[x][m]) for x in methods)]
            if comparison:
                c = comparison.get(m)
                row += [format_interval(c), c["verdict"]] if c else ["–", "–"]
            rows.append(row)
        extra = ["SFTMix − NTP (paired, 95% CI)", "verdict"] if comparison else []
        lines += markdown_table(["metric", *names, *extra], rows)
    tasks = sorted({t for x in methods for t in summary[x].get("by_task", {})})
    if tasks:
        lines += ["", "Exact match per task (mean ± std over seeds):", ""]
        lines += markdown_table(["task", *names], ([t, *(_fmt(summary[x]["by_task"][t], 2)
                                                         if t in summary[x]["by_task"] else "–" for x in methods)]
                                                   for t in tasks))
    cut = _generations_cut(results)
    if cut:
        lines += ["", cut]
    dyn = results.get("dynamics") or {}
    if dyn.get("reference_model"):
        model = dyn.get("trained_model")
        same = dyn["reference_model"] == model
        lines += ["", f"Reference model (its training dynamics split the data): {dyn['reference_model']}"
                  + (" (the trained model)." if same else f"; trained model: {model}.")]
    if "noise_auroc" in dyn:
        lines += ["", f"Label noise in the training data: {dyn['n_noisy']} of {dyn['n_examples']} answers are "
                  f"corrupted; the reference run's confidence flags them with AUROC {dyn['noise_auroc']:.2f} "
                  "(0.5 = chance, 1.0 = perfect)."]
    fit = results.get("fit") or []
    if fit:
        first, last = fit[0], fit[-1]
        noisy = (f", corrupted answers {first['train_noisy']:.3f} → {last['train_noisy']:.3f}"
                 if pd.notna(last.get("train_noisy")) else "")
        lines += ["", f"Fit of the reference (NTP) run from step {first['step']} to {last['step']} "
                  f"(NLL per response token): clean training answers {first['train_clean']:.3f} → "
                  f"{last['train_clean']:.3f}{noisy}, held-out {first['held_out']:.3f} → {last['held_out']:.3f}; "
                  f"held-out / clean training {first['ratio']:.1f}× → {last['ratio']:.1f}×."]
    if (results.get("instruct") or {}).get("markdown"):
        lines += ["", results["instruct"]["markdown"]]
    if results.get("stage_seconds"):
        lines += ["", f"Wall time of the stages run for this directory: {results['wall_seconds']:.0f} s."]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items())]
    return markdown_document(lines)


def write_results(run: Path, results: dict) -> None:
    run = RunDir(run)
    atomic_write_json(run.results_json, results)
    atomic_write_text(run.results_md, results_markdown(results))
