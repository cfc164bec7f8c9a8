"""Regenerate every figure of a run directory (``sftmix figures RUN_DIR --out DIR``).

Each figure is made by a function of :mod:`sftmix.viz.plots` from the files of the run
directory; this module only reads files, calls the plots and saves PNG + PDF.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis.noise import noise_auroc
from ..analysis.trajectories import checkpoint_columns, mean_vs_last
from ..dynamics import load_dynamics, load_split
from ..io import EVAL_FILE, GENERATIONS_FILE, LOG_HISTORY_FILE, RunDir
from .plots import (
    plot_confidence_by_task,
    plot_confidence_hist,
    plot_dynamics_map,
    plot_fit,
    plot_mean_vs_last,
    plot_results,
    plot_split_composition,
    plot_training_curves,
    plot_trajectories,
    plot_umap_confidence,
    save_figure,
)

__all__ = ["NOISE_LABELS", "load_histories", "make_figures", "per_task_frame"]


def load_histories(run) -> dict[str, list]:
    """``{"NTP": log_history, "SFTMix": log_history}`` of a run directory's first seed
    (the ``Trainer.state.log_history`` lists that :func:`plot_training_curves` draws)."""
    run = RunDir(run)
    out = {}
    for method, label in (("ntp", "NTP"), ("sftmix", "SFTMix")):
        f = run.train(method, 0) / LOG_HISTORY_FILE
        if not f.exists():
            found = sorted((run.root / method).glob(f"seed*/{LOG_HISTORY_FILE}"))
            f = found[0] if found else f
        if f.exists():
            out[label] = json.loads(f.read_text())
    return out


#: Names of the ``noisy`` flag's two groups in the figures.
NOISE_LABELS = {False: "clean answers", True: "corrupted answers"}
#: Example ids of the built-in suite: ``<task>-<difficulty>-<hash>``.
_SUITE_ID = re.compile(r"^(?P<task>[a-z_]+)-\d+-[0-9a-f]+$")


def per_task_frame(run) -> pd.DataFrame:
    """Long table (method, seed, task, accuracy) from a run's eval.json files.

    ``attrs["n_examples"]`` is ``{task: held-out examples}`` when the generations file names
    them (the built-in suite's ids start with the task), else None."""
    rows, counts = [], None
    for f in sorted(RunDir(run).root.glob(f"*/seed*/{EVAL_FILE}")):
        method = "NTP" if f.parent.parent.name == "ntp" else "SFTMix"
        seed = int(f.parent.name[len("seed"):])
        by_task = json.loads(f.read_text()).get("exact_match_by_task", {})
        for task, acc in by_task.items():
            rows.append({"method": method, "seed": seed, "task": task, "accuracy": acc})
        if counts is None and (f.parent / GENERATIONS_FILE).exists():
            counts = _task_counts(json.loads((f.parent / GENERATIONS_FILE).read_text()), set(by_task))
    frame = pd.DataFrame(rows, columns=["method", "seed", "task", "accuracy"])
    frame.attrs["n_examples"] = counts
    return frame


def _task_counts(generations: list, tasks: set) -> dict | None:
    matches = [_SUITE_ID.match(str(g.get("example_id", ""))) for g in generations]
    if not matches or not all(matches):
        return None
    counts = pd.Series([m.group("task") for m in matches]).value_counts().to_dict()
    return counts if set(counts) == tasks else None


def make_figures(run: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure the run directory has data for; return the written files."""
    run, out = RunDir(run), Path(out)
    written: list[Path] = []

    def save(fig, name):
        written.extend(save_figure(fig, out / name))
        plt.close(fig)

    split = load_split(run.split) if run.split.exists() else None
    table = load_dynamics(run.dynamics) if run.dynamics.exists() else None
    if table is not None:
        save(plot_dynamics_map(table, split=split, color="correctness"), "dynamics_map")
        if split is not None:
            save(plot_dynamics_map(table, split=split, color="split"), "dynamics_map_split")
        # log10 mean perplexity: the paper's confidence without the tail that puts most examples in one bar
        save(plot_confidence_hist(table, split=split, log=True), "confidence_hist")
        if "task" in table:
            save(plot_confidence_by_task(table, split=split, log=True), "confidence_by_task")
        if "noisy" in table and table["noisy"].any():
            fig = plot_confidence_hist(table, by="noisy", split=split, log=True, stat="share", labels=NOISE_LABELS)
            fig.axes[0].set_title("Clean vs corrupted answers, each drawn as a share of its own group\n"
                                  f"AUROC of \u2212confidence for the corrupted ones: {noise_auroc(table):.2f} "
                                  "(0.5 = chance, 1 = perfect)", fontsize=10)
            save(fig, "confidence_by_noise")
        if len(checkpoint_columns(table, "ppl")) > 1:
            save(plot_trajectories(table, split=split), "trajectories")
            save(plot_mean_vs_last(mean_vs_last(table, ratio=(split or {}).get("ratio", 0.5))), "mean_vs_last")
        if split is not None and "task" in table:
            save(plot_split_composition(table, split), "split_composition")
    if run.projection.exists():
        proj = pd.read_parquet(run.projection)
        save(plot_umap_confidence(proj, color="confidence", split=split, label_groups=_tasks(proj)), "umap_confidence")
        if split is not None:
            save(plot_umap_confidence(proj, color="split", split=split, label_groups=_tasks(proj)), "umap_split")
        if "task" in proj:
            save(plot_umap_confidence(proj, color="task", label_groups="task"), "umap_task")
    histories = load_histories(run)
    if histories:
        save(plot_training_curves(histories), "training_curves")
    if run.fit.exists():
        save(plot_fit(pd.read_csv(run.fit)), "fit_gap")
    per_task = per_task_frame(run)
    if not per_task.empty:
        save(plot_results(per_task, n_examples=per_task.attrs.get("n_examples"), label="held-out exact match"),
             "per_task_accuracy")
    return written


def _tasks(projection: pd.DataFrame) -> str | None:
    return "task" if "task" in projection else None
