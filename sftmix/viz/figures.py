"""Regenerate every figure of a run directory (``sftmix figures RUN_DIR --out DIR``).

Each figure is made by a function of :mod:`sftmix.viz.plots` from the files of the run
directory; this module only reads files, calls the plots and saves PNG + PDF.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis.noise import noise_auroc
from ..dynamics import load_dynamics, load_split
from ..io import EVAL_FILE, LOG_HISTORY_FILE, RunDir
from .plots import (
    plot_confidence_by_task,
    plot_confidence_hist,
    plot_dynamics_map,
    plot_fit,
    plot_results,
    plot_training_curves,
    plot_umap_confidence,
    save_figure,
)


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


def per_task_frame(run) -> pd.DataFrame:
    """Long table (method, seed, task, accuracy) from a run's eval.json files."""
    rows = []
    for f in sorted(RunDir(run).root.glob(f"*/seed*/{EVAL_FILE}")):
        method = "NTP" if f.parent.parent.name == "ntp" else "SFTMix"
        seed = int(f.parent.name[len("seed"):])
        for task, acc in json.loads(f.read_text()).get("exact_match_by_task", {}).items():
            rows.append({"method": method, "seed": seed, "task": task, "accuracy": acc})
    return pd.DataFrame(rows, columns=["method", "seed", "task", "accuracy"])


def make_figures(run: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure the run directory has data for; return the written files."""
    run, out = RunDir(run), Path(out)
    written: list[Path] = []

    def save(fig, name):
        written.extend(save_figure(fig, out / name))
        plt.close(fig)

    split = load_split(run.split) if run.split.exists() else None
    if run.dynamics.exists():
        table = load_dynamics(run.dynamics)
        save(plot_dynamics_map(table, split=split, color="correctness"), "dynamics_map")
        if split is not None:
            save(plot_dynamics_map(table, split=split, color="split"), "dynamics_map_split")
        save(plot_confidence_hist(table, split=split), "confidence_hist")
        if "task" in table:
            # The geometric-mean token probability lies in [0, 1]: a few huge perplexities do not
            # squash every task into one column, as -perplexity would.
            save(plot_confidence_by_task(table, metric="confidence_prob"), "confidence_by_task")
        if "noisy" in table and table["noisy"].any():
            fig = plot_confidence_hist(table, by="noisy", log=True)
            fig.axes[0].set_title(f"Corrupted vs clean answers: AUROC of −confidence for the noise flag\n"
                                  f"= {noise_auroc(table):.2f} (0.5 = chance, 1 = perfect)", fontsize=10)
            save(fig, "confidence_by_noise")
    if run.projection.exists():
        proj = pd.read_parquet(run.projection)
        save(plot_umap_confidence(proj, color="confidence"), "umap_confidence")
        if split is not None:
            save(plot_umap_confidence(proj, color="split", split=split), "umap_split")
    histories = load_histories(run)
    if histories:
        save(plot_training_curves(histories), "training_curves")
    if run.fit.exists():
        save(plot_fit(pd.read_csv(run.fit)), "fit_gap")
    per_task = per_task_frame(run)
    if not per_task.empty:
        save(plot_results(per_task), "per_task_accuracy")
    return written
