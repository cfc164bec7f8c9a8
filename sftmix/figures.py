"""Regenerate every figure of a run directory (``sftmix figures RUN_DIR --out DIR``).

Each figure is made by a function of :mod:`sftmix.plots` from the files of the run
directory; this module only reads files, calls the plots and saves PNG + PDF.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def _histories(run: Path) -> dict[str, list]:
    out = {}
    for method, label in (("ntp", "NTP"), ("sftmix", "SFTMix")):
        f = run / method / "seed0" / "log_history.json"
        if not f.exists():
            found = sorted((run / method).glob("seed*/log_history.json"))
            f = found[0] if found else f
        if f.exists():
            out[label] = json.loads(f.read_text())
    return out


def per_task_frame(run: Path) -> pd.DataFrame:
    """Long table (method, seed, task, accuracy) from a run's eval.json files."""
    rows = []
    for f in sorted(run.glob("*/seed*/eval.json")):
        method = "NTP" if f.parent.parent.name == "ntp" else "SFTMix"
        seed = int(f.parent.name[len("seed"):])
        for task, acc in json.loads(f.read_text()).get("exact_match_by_task", {}).items():
            rows.append({"method": method, "seed": seed, "task": task, "accuracy": acc})
    return pd.DataFrame(rows, columns=["method", "seed", "task", "accuracy"])


def make_figures(run: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure the run directory has data for; return the written files."""
    import matplotlib.pyplot as plt

    from .dynamics import load_dynamics, load_split
    from .plots import (plot_confidence_by_task, plot_confidence_hist, plot_dynamics_map, plot_results,
                        plot_training_curves, plot_umap_confidence, save_figure)

    run, out = Path(run), Path(out)
    written: list[Path] = []

    def save(fig, name):
        written.extend(save_figure(fig, out / name))
        plt.close(fig)

    split = load_split(run / "split.json") if (run / "split.json").exists() else None
    if (run / "dynamics.parquet").exists():
        table = load_dynamics(run / "dynamics.parquet")
        save(plot_dynamics_map(table, split=split, color="correctness"), "dynamics_map")
        if split is not None:
            save(plot_dynamics_map(table, split=split, color="split"), "dynamics_map_split")
        save(plot_confidence_hist(table, split=split), "confidence_hist")
        if "task" in table:
            save(plot_confidence_by_task(table), "confidence_by_task")
        if "noisy" in table and table["noisy"].any():
            save(plot_confidence_hist(table, by="noisy"), "confidence_by_noise")
    if (run / "projection.parquet").exists():
        proj = pd.read_parquet(run / "projection.parquet")
        save(plot_umap_confidence(proj, color="confidence"), "umap_confidence")
        if split is not None:
            save(plot_umap_confidence(proj, color="split", split=split), "umap_split")
    histories = _histories(run)
    if histories:
        save(plot_training_curves(histories), "training_curves")
    per_task = per_task_frame(run)
    if not per_task.empty:
        save(plot_results(per_task), "per_task_accuracy")
    return written
