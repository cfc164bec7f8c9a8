"""Figures of the base-model study (:mod:`sftmix.pipeline.study_report`): how far two reference
models of different families agree on which examples are confident, and every (cell, seed)
result of a metric, paired by seed."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...analysis.agreement import confidence_agreement
from ._style import OKABE_ITO, SPLIT_COLORS, figure_and_axes, new_figure, require_columns
from .marks import NOISY_COLOR

__all__ = ["plot_confidence_agreement", "plot_cells"]


def plot_confidence_agreement(first: pd.DataFrame, second: pd.DataFrame, *, names: Sequence[str] = ("first", "second"),
                              metric: str = "confidence", ratio: float = 0.5, ax=None) -> Figure:
    """Each training example's confidence rank under two reference models (two dynamics tables of the
    same examples), with each model's split threshold: examples in the top-right and bottom-left
    quadrants are in the same half for both. Swapped answers (``noisy``) are drawn as crosses. The
    title gives the Spearman correlation and the overlap of the confident halves
    (:func:`sftmix.analysis.agreement.confidence_agreement`)."""
    for table, name in zip((first, second), names):
        require_columns(table, ["example_id", metric], f"the dynamics table of {name}")
    stats = confidence_agreement(first, second, metric=metric, ratio=ratio)
    a = first.assign(example_id=first["example_id"].astype(str)).set_index("example_id")
    b = second.assign(example_id=second["example_id"].astype(str)).set_index("example_id").loc[a.index]
    n = len(a)
    ra, rb = a[metric].rank(pct=True).to_numpy(), b[metric].rank(pct=True).to_numpy()
    fig, ax = figure_and_axes(ax, (5.6, 5.2))
    same = (ra > 1 - ratio) == (rb > 1 - ratio)
    noisy = a["noisy"].to_numpy(bool) if "noisy" in a else np.zeros(n, bool)
    for mask, color, label in ((same & ~noisy, SPLIT_COLORS["confident"], "same half for both"),
                               (~same & ~noisy, SPLIT_COLORS["unconfident"], "halves disagree")):
        ax.scatter(ra[mask], rb[mask], s=22, color=color, alpha=0.75, label=f"{label} ({mask.sum()})", linewidths=0)
    if noisy.any():
        ax.scatter(ra[noisy], rb[noisy], marker="x", s=40, color=NOISY_COLOR, label=f"swapped answer ({noisy.sum()})")
    for line in (ax.axvline, ax.axhline):
        line(1 - ratio, color="#777777", lw=0.8, ls="--")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{metric.replace('_', ' ')} rank under {names[0]} (1 = most confident)")
    ax.set_ylabel(f"{metric.replace('_', ' ')} rank under {names[1]}")
    ax.set_title(f"Two families' confidence on the same {n} examples\nSpearman {stats['spearman']:.2f}; confident "
                 f"halves share {stats['confident_overlap']:.0%} (chance {stats['chance_overlap']:.0%})", fontsize=10)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return fig


def plot_cells(cells: pd.DataFrame, metrics: Mapping[str, str], *, labels: Mapping[str, str] | None = None) -> Figure:
    """One panel per metric (``{column: title}``), one column of dots per cell (``cells``: one row per
    ``cell`` and ``seed``), the seeds joined across cells (the comparisons are paired by seed) and
    each cell's mean as a bar."""
    require_columns(cells, ["cell", "seed", *metrics], "the cells table")
    order = list(dict.fromkeys(cells["cell"]))
    labels = labels or {}
    fig = new_figure((3.2 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, (column, title) in zip(axes, metrics.items()):
        wide = cells.pivot(index="seed", columns="cell", values=column)[order]
        x = np.arange(len(order))
        for k, (seed, row) in enumerate(wide.iterrows()):
            ax.plot(x, row.to_numpy(float), marker="o", color=OKABE_ITO[k % len(OKABE_ITO)], lw=0.9, ms=5,
                    label=f"seed {seed}")
        means = wide.mean().to_numpy(float)
        ax.hlines(means, x - 0.3, x + 0.3, color="#222222", lw=2.2, label="mean")
        ax.set_xticks(x, [labels.get(c, c) for c in order], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False)
    return fig
