"""The regime map: SFTMix - NTP over a grid of data size x label noise x epochs.

One heatmap per (metric, epochs): rows are training-set sizes, columns label-noise levels,
the same rows and columns in every panel. Each cell prints the paired difference SFTMix − NTP
and is coloured by that same number, so the colour bar's ticks read in the printed units; the
colour map is flipped for lower-is-better metrics so that blue always means SFTMix better.
``*`` marks a 95% interval that excludes zero, a box a difference that survives the Holm
correction over every comparison in the grid, and hatched grey cells were not run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ._style import new_figure, require_columns

__all__ = ["plot_regime_map", "regime_cmap"]


_TITLES = {"exact_match": "exact match (↑)", "nll": "held-out NLL (↓)", "ece": "ECE (↓)"}
_HIGHER = {"exact_match": True, "nll": False, "ece": False}


def regime_cmap(metric: str) -> str:
    """``"RdBu"`` for higher-is-better metrics, ``"RdBu_r"`` for lower-is-better ones: blue = SFTMix better."""
    return "RdBu" if _HIGHER.get(metric, True) else "RdBu_r"


def plot_regime_map(summary: pd.DataFrame, *, metrics=("exact_match", "nll", "ece"),
                    grid: dict | None = None) -> Figure:
    """Heatmaps of SFTMix - NTP from :func:`sftmix.pipeline.regime.summarize_regime`.

    ``grid``: ``{"n_train": [...], "noise": [...], "epochs": [...]}``, the planned grid; its
    cells missing from ``summary`` are marked "not run" (default: the values in ``summary``).
    """
    require_columns(summary, ["n_train", "noise", "epochs", "metric", "diff", "lo", "hi", "p_holm"],
                    "plot_regime_map's summary")
    metrics = [m for m in metrics if m in set(summary["metric"])]
    grid = grid or {}
    rows = sorted(set(grid.get("n_train", [])) | set(summary["n_train"]), reverse=True)
    cols = sorted(set(grid.get("noise", [])) | set(summary["noise"]))
    epochs = sorted(set(grid.get("epochs", [])) | set(summary["epochs"]))
    fig = new_figure((3.3 * len(epochs) + 1.0, 2.5 * len(metrics) + 0.7))
    axes = np.atleast_2d(fig.subplots(len(metrics), len(epochs), squeeze=False))
    n_comparisons = len(summary)
    for i, metric in enumerate(metrics):
        part = summary[summary["metric"] == metric]
        scale = float(np.nanmax(np.abs(part["diff"]))) or 1.0
        for j, ep in enumerate(epochs):
            ax = axes[i, j]
            cell = part[part["epochs"] == ep]
            values = cell.pivot(index="n_train", columns="noise", values="diff").reindex(index=rows, columns=cols)
            last = j == len(epochs) - 1
            sns.heatmap(values, ax=ax, cmap=regime_cmap(metric), vmin=-scale, vmax=scale, center=0, cbar=last,
                        cbar_kws={"label": "SFTMix − NTP\n(blue: SFTMix better)"} if last else None,
                        annot=_annotations(values, cell), fmt="", annot_kws={"fontsize": 8}, linewidths=0.5,
                        linecolor="white")
            for r, n in enumerate(rows):
                for c, noise in enumerate(cols):
                    if np.isnan(values.loc[n, noise]):
                        ax.add_patch(Rectangle((c, r), 1, 1, facecolor="0.92", edgecolor="0.6", hatch="///",
                                               linewidth=0))
                        ax.text(c + 0.5, r + 0.5, "not run", ha="center", va="center", fontsize=7, color="0.35")
                        continue
                    row = cell[(cell["n_train"] == n) & (cell["noise"] == noise)]
                    if float(row["p_holm"].iloc[0]) < 0.05:
                        ax.add_patch(Rectangle((c, r), 1, 1, fill=False, edgecolor="black", lw=2))
            ax.set_title(f"{_TITLES.get(metric, metric)}, {ep} epochs", fontsize=9)
            ax.set_xlabel("label noise" if i == len(metrics) - 1 else "")
            ax.set_ylabel("training examples" if j == 0 else "")
            ax.set_xticks(np.arange(len(cols)) + 0.5, [f"{c:g}" for c in cols])
            ax.set_yticks(np.arange(len(rows)) + 0.5, [str(r) for r in rows], rotation=0)
    fig.suptitle(f"SFTMix − NTP, paired over seeds (printed and coloured alike; blue = SFTMix better)\n"
                 f"* 95% CI excludes 0;  box: Holm-adjusted p < 0.05 over {n_comparisons} comparisons;  "
                 f"hatched: not run", fontsize=9)
    return fig


def _annotations(values: pd.DataFrame, cell: pd.DataFrame) -> np.ndarray:
    text = np.full(values.shape, "", dtype=object)
    for r, n in enumerate(values.index):
        for c, noise in enumerate(values.columns):
            row = cell[(cell["n_train"] == n) & (cell["noise"] == noise)]
            if not len(row):
                continue
            row = row.iloc[0]
            star = "*" if (row["lo"] > 0 or row["hi"] < 0) else ""
            text[r, c] = f"{row['diff']:+.3f}{star}"
    return text
