"""The representation space projected to 2-D (UMAP, t-SNE or PCA), one dot per training example.

The clusters of the built-in suite are mostly *tasks*; ``label_groups="task"`` writes each
task's name on its points, so a reader sees which cluster is which. Confidence is coloured
in deciles (``scale="quantile"``) so the two halves of the split differ in colour rather than
the long tail of perplexity painting almost every point alike; corrupted answers are overlaid
as black crosses.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.figure import Figure

from ...recipe import SUMMARIES
from ._style import axis_label, figure_and_axes, new_figure, require_columns
from .marks import colorbar, mark_noisy, marker_size, scatter_by

__all__ = ["plot_projection_grid", "plot_umap_confidence"]


def _group_labels(ax, projection: pd.DataFrame, column: str, *, max_per_group: int = 2) -> list:
    """Each group's name on its densest spot (a point with the most same-group points within 4%
    of the map's diagonal); a group split over two places is named on the second too when it
    holds at least 30% of the group's points there."""
    texts = []
    outline = [patheffects.withStroke(linewidth=2.2, foreground="white")]  # readable, hides few points
    xy = projection[["x", "y"]].to_numpy(dtype=float)
    radius = 0.04 * float(np.hypot(*(xy.max(axis=0) - xy.min(axis=0)))) or 1.0
    for name, idx in projection.groupby(column, sort=True).indices.items():
        pts = xy[idx]
        left = np.ones(len(pts), dtype=bool)
        for k in range(max_per_group):
            near = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1) <= radius ** 2
            density = (near & left[None, :]).sum(axis=1) * left
            best = int(np.argmax(density))
            if k > 0 and density[best] < 0.3 * len(pts):
                break
            texts.append(ax.text(pts[best, 0], pts[best, 1], str(name), fontsize=7, ha="center", va="center",
                                 zorder=6, path_effects=outline))
            left &= ~(((pts - pts[best]) ** 2).sum(axis=1) <= (2 * radius) ** 2)
            if not left.any():
                break
    return texts


def plot_umap_confidence(projection: pd.DataFrame, *, color: str = "confidence",
                         split: Mapping | None = None, ax=None, method: str | None = None,
                         seed: int = 0, scale: str | None = None, label_groups: str | None = None,
                         noisy: bool | None = None) -> Figure:
    """Projection of the representation space (``x``, ``y``) coloured by ``color``.

    ``color``: ``"confidence"`` or any float column (continuous, colour bar),
    ``"split"`` (needs ``split``), or ``"task"`` / any categorical column. Merge the
    dynamics table into the projection on ``example_id`` to colour by its columns.
    ``scale`` of a continuous colour: ``"quantile"`` (deciles; the default for the
    confidence columns; with a ``split`` on that column the colours turn from red to blue at
    its threshold, marked on the colour bar) or ``"linear"`` (clipped to the 2nd-98th
    percentile). ``label_groups``: a column (e.g. ``"task"``) whose groups are named on the
    map. ``noisy``: overlay corrupted answers (default: when the projection has a ``noisy``
    column with any, and ``color`` is not ``"noisy"``). ``method`` names the projection on the
    axes; by default ``projection.attrs["method"]`` (set by :mod:`sftmix.analysis.projection`;
    kept by parquet, dropped by ``merge``), else "UMAP".
    """
    require_columns(projection, ["x", "y"], "the projection")
    if label_groups is not None:
        require_columns(projection, [label_groups], "the projection")
    method = method or projection.attrs.get("method", "UMAP")
    if scale is None:
        scale = SUMMARIES[color].colour_scale if color in SUMMARIES else "linear"
    if scale not in ("quantile", "linear"):
        raise ValueError(f'scale must be "quantile" or "linear", got {scale!r}')
    threshold = None
    if split is not None and split.get("metric") == color and "threshold" in split:
        threshold = float(split["threshold"])
    fig, ax = figure_and_axes(ax, (7.2, 5.2))
    mappable, _ = scatter_by(ax, projection, "x", "y", color, split if color == "split" else None,
                             np.random.default_rng(seed), scale=scale, threshold=threshold)
    if noisy is None:
        noisy = color != "noisy" and "noisy" in projection.columns
    crosses = mark_noisy(ax, projection, "x", "y") if noisy else None
    if label_groups is not None:
        _group_labels(ax, projection, label_groups)
    scale_up = max(1.0, 6 / math.sqrt(marker_size(len(projection))))
    if mappable is not None:
        what = axis_label(color) + (" (deciles)" if scale == "quantile" else "")
        colorbar(fig, mappable, label=what, ax=ax)
        if crosses is not None:
            ax.legend([crosses], [crosses.get_label()], loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False,
                      fontsize=8, markerscale=scale_up, borderaxespad=0.1)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
                  title=color, markerscale=scale_up)
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_xticks([])
    ax.set_yticks([])  # projection coordinates carry no units
    what = "split" if color == "split" else color
    title = f"{method} of the representation space, coloured by {what}"
    if label_groups is not None:
        title += f"\n(names: the {label_groups} of each cluster)"
    ax.set_title(title, fontsize=10, pad=16 if crosses is not None and mappable is not None else 6)
    return fig


def plot_projection_grid(projections: Mapping[str, pd.DataFrame], *, split: Mapping,
                         colors: tuple[str, ...] = ("confidence", "split"), title: str | None = None) -> Figure:
    """One row per projection (``{method: projection}``, e.g. t-SNE and UMAP), one column per colour
    in ``colors``: the same examples seen through each projection, panels by
    :func:`plot_umap_confidence`."""
    if not projections:
        raise ValueError("projections is empty")
    fig = new_figure((6.25 * len(colors), 5.0 * len(projections)))
    axes = fig.subplots(len(projections), len(colors), squeeze=False)
    for row, (method, proj) in enumerate(projections.items()):
        for col, color in enumerate(colors):
            plot_umap_confidence(proj, color=color, split=split, ax=axes[row, col], method=method)
            # a panel with a colour bar carries the corrupted-answer key above its axes: keep the title clear of it
            keyed = "noisy" in proj and color in proj and pd.api.types.is_float_dtype(proj[color])
            axes[row, col].set_title(f"{method}, coloured by {color}", fontsize=10, pad=16 if keyed else 6)
    if title:
        fig.suptitle(title)
    return fig
