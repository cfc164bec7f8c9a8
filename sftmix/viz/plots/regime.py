"""The regime map: SFTMix - NTP over a grid of data size x label noise x epochs.

One heatmap per (metric, epochs): rows are training-set sizes, columns label-noise
levels. The colour is the paired difference *signed so that blue means SFTMix better*
(for lower-is-better metrics the sign is flipped), each cell prints the raw difference,
``*`` marks a 95% interval that excludes zero, and a box marks a difference that
survives the Holm correction over every comparison in the grid.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ._style import new_figure, require_columns

_TITLES = {"exact_match": "exact match (↑)", "nll": "held-out NLL (↓)", "ece": "ECE (↓)"}
_HIGHER = {"exact_match": True, "nll": False, "ece": False}


def plot_regime_map(summary: pd.DataFrame, *, metrics=("exact_match", "nll", "ece")) -> Figure:
    """Heatmaps of SFTMix - NTP from :func:`sftmix.pipeline.regime.summarize_regime`."""
    require_columns(summary, ["n_train", "noise", "epochs", "metric", "diff", "lo", "hi", "p_holm"],
                    "plot_regime_map's summary")
    metrics = [m for m in metrics if m in set(summary["metric"])]
    epochs = sorted(summary["epochs"].unique())
    fig = new_figure((3.3 * len(epochs) + 0.8, 2.5 * len(metrics) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(metrics), len(epochs), squeeze=False))
    n_comparisons = len(summary)
    for i, metric in enumerate(metrics):
        part = summary[summary["metric"] == metric]
        sign = 1.0 if _HIGHER.get(metric, True) else -1.0
        scale = float(np.nanmax(np.abs(part["diff"]))) or 1.0
        for j, ep in enumerate(epochs):
            ax = axes[i, j]
            cell = part[part["epochs"] == ep]
            grid = cell.pivot(index="n_train", columns="noise", values="diff").sort_index(ascending=False)
            signed = grid * sign
            sns.heatmap(signed, ax=ax, cmap="RdBu", vmin=-scale, vmax=scale, center=0, cbar=j == len(epochs) - 1,
                        cbar_kws={"label": "SFTMix better →" if j == len(epochs) - 1 else None},
                        annot=_annotations(grid, cell), fmt="", annot_kws={"fontsize": 8}, linewidths=0.5,
                        linecolor="white")
            for (r, n), (c, noise) in ((rc, cc) for rc in enumerate(grid.index) for cc in enumerate(grid.columns)):
                row = cell[(cell["n_train"] == n) & (cell["noise"] == noise)]
                if len(row) and float(row["p_holm"].iloc[0]) < 0.05:
                    ax.add_patch(Rectangle((c, r), 1, 1, fill=False, edgecolor="black", lw=2))
            ax.set_title(f"{_TITLES.get(metric, metric)}, {ep} epochs", fontsize=9)
            ax.set_xlabel("label noise" if i == len(metrics) - 1 else "")
            ax.set_ylabel("training examples" if j == 0 else "")
    fig.suptitle(f"SFTMix − NTP, paired over seeds; colour: blue = SFTMix better\n"
                 f"* 95% CI excludes 0;  box: Holm-adjusted p < 0.05 over {n_comparisons} comparisons", fontsize=9)
    return fig


def _annotations(grid: pd.DataFrame, cell: pd.DataFrame) -> np.ndarray:
    text = np.empty(grid.shape, dtype=object)
    for r, n in enumerate(grid.index):
        for c, noise in enumerate(grid.columns):
            row = cell[(cell["n_train"] == n) & (cell["noise"] == noise)]
            if not len(row):
                text[r, c] = ""
                continue
            row = row.iloc[0]
            star = "*" if (row["lo"] > 0 or row["hi"] < 0) else ""
            text[r, c] = f"{row['diff']:+.3f}{star}"
    return text
