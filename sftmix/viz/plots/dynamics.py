"""The training-dynamics map (Dataset Cartography, Swayamdipta et al., 2020): one dot per
training example at (variability, confidence) over the reference checkpoints.

Continuous colour columns get a ``viridis`` colour bar (clipped to the 2nd-98th
percentile; correctness to [0, 1]); categorical ones (``task``, ``noisy``, the split) get
the palettes of :mod:`sftmix.viz.plots._style`. Corrupted answers (the suite's ``noisy``
flag) are overlaid as black crosses, so label noise is visible whatever the colour.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._style import axis_label, new_figure, require_columns
from .marks import colorbar, hist_bins, mark_noisy, marker_size, scatter_by, subsample

__all__ = ["plot_dynamics_map"]


# --------------------------------------------------------------------- dynamics map
def plot_dynamics_map(table: pd.DataFrame, *, split: Mapping | None = None,
                      color: str = "correctness", scale: str = "prob", ax=None,
                      max_points: int | None = 20000, seed: int = 0, noisy: bool | None = None) -> Figure:
    """Dataset-Cartography map: variability (x) against confidence (y), one dot per example.

    Parameters
    ----------
    table : dynamics table, one row per example.
    split : split dict; needed for ``color="split"``.
    color : ``"correctness"`` (continuous, colour bar), ``"split"``, ``"task"``,
        ``"noisy"`` or any other column (numeric floats are continuous).
    scale : ``"prob"`` uses ``variability_prob``/``confidence_prob`` (bounded, the
        Cartography convention); ``"perplexity"`` uses the paper's
        ``variability``/``confidence`` (minus mean perplexity).
    ax : draw into this axes (no marginal histograms); else a new figure with
        marginal histograms on top and right.
    max_points : seeded random subsample above this many rows (stated in the title).
    noisy : overlay the corrupted answers (``noisy`` column) as black crosses; default:
        when the table has any and ``color`` is not ``"noisy"`` itself.
    """
    if scale not in ("prob", "perplexity"):
        raise ValueError(f'scale must be "prob" or "perplexity", got {scale!r}')
    x, y = ("variability_prob", "confidence_prob") if scale == "prob" else \
        ("variability", "confidence")
    require_columns(table, [x, y], "the dynamics table")
    data, note = subsample(table, max_points, seed)
    rng = np.random.default_rng(seed)

    if ax is None:
        fig, gs, ax, ax_top, ax_right, corner = _map_with_marginals()
    else:
        fig, gs, ax_top, ax_right, corner = ax.get_figure(root=True), None, None, None, None

    mappable, groups = scatter_by(ax, data, x, y, color, split, rng)
    if noisy is None:
        noisy = color != "noisy" and "noisy" in data.columns
    crosses = mark_noisy(ax, data, x, y) if noisy else None
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    _label_regions(ax)
    if ax_top is not None:
        _draw_marginals(data, x, y, groups, ax_top, ax_right)
    _draw_key(fig, ax, mappable, crosses, color, len(data),
              cax_slot=gs[1, 2] if gs is not None else None, corner=corner)

    title = "Training-dynamics map" + (f"\n({note})" if note else "")
    (fig.suptitle(title) if ax_top is not None else ax.set_title(title))
    return fig


def _map_with_marginals():
    """A new figure: the map, histograms above and to its right, a blank corner for the legend
    and a slot (``gs[1, 2]``) for the colour bar. Returns ``fig, gs, ax, ax_top, ax_right, corner``."""
    fig = new_figure((7.4, 6.6))
    gs = fig.add_gridspec(2, 3, width_ratios=[4, 1, 0.18], height_ratios=[1, 4])
    ax = fig.add_subplot(gs[1, 0])
    ax_top = fig.add_subplot(gs[0, 0], sharex=ax)
    ax_right = fig.add_subplot(gs[1, 1], sharey=ax)
    corner = fig.add_subplot(gs[0, 1:])
    corner.axis("off")
    return fig, gs, ax, ax_top, ax_right, corner


def _label_regions(ax) -> None:
    """Name the three Cartography regions inside the axes' corners and right edge."""
    box = dict(boxstyle="round,pad=0.25", facecolor="white", alpha=0.75, linewidth=0)
    for text, pos, ha, va in (("easy-to-learn", (0.02, 0.98), "left", "top"),
                              ("hard-to-learn", (0.02, 0.02), "left", "bottom"),
                              ("ambiguous", (0.98, 0.5), "right", "center")):
        ax.text(*pos, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
                style="italic", bbox=box, zorder=5)


def _draw_marginals(data: pd.DataFrame, x: str, y: str, groups, ax_top, ax_right) -> None:
    """Step histograms of ``x`` above and ``y`` to the right, one per colour group (or one grey)."""
    masks = [(m, c) for _, m, c in groups] if groups else [(slice(None), "0.45")]
    for col, hax, orient in ((x, ax_top, "vertical"), (y, ax_right, "horizontal")):
        bins = hist_bins(data[col].to_numpy(dtype=float))
        for mask, colour in masks:
            hax.hist(data[col].to_numpy()[mask], bins=bins, histtype="step",
                     color=colour, orientation=orient, linewidth=1.2)
        hax.spines[["top", "right"]].set_visible(False)
    ax_top.tick_params(labelbottom=False)
    ax_right.tick_params(labelleft=False)
    ax_top.set_ylabel("count")
    ax_right.set_xlabel("count")


def _draw_key(fig, ax, mappable, crosses, color: str, n_points: int, *, cax_slot, corner) -> None:
    """The colour bar (continuous colours, with the crosses' legend) or the group legend: in the
    figure's corner and colour-bar slot when it has marginals, else beside ``ax``."""
    scale_up = max(1.0, 6 / math.sqrt(marker_size(n_points)))
    if mappable is not None:
        cax = fig.add_subplot(cax_slot) if corner is not None else None
        colorbar(fig, mappable, label=axis_label(color), cax=cax, ax=ax)
        if crosses is not None:
            (corner or ax).legend([crosses], [crosses.get_label()], loc="center" if corner else "lower right",
                                  frameon=False, markerscale=scale_up)
    elif corner is not None:
        handles, labels = ax.get_legend_handles_labels()
        title = "split" if color == "split" else color
        corner.legend(handles, labels, loc="center", title=title, frameon=False, markerscale=scale_up)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title="split" if color == "split" else color)
