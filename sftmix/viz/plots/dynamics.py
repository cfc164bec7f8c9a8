"""Figures with one mark per example: the training-dynamics map, histograms of a dynamics
metric (overall, by group, by task) and the projection of the representation space.

Continuous colour columns get a ``viridis`` colour bar (clipped to the 2nd-98th
percentile; correctness to [0, 1]); categorical ones (``task``, ``noisy``, the split) get
the palettes of :mod:`sftmix.viz.plots._style`.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from ._style import CMAP, SPLIT_COLORS, axis_label, figure_and_axes, marker_cycle, new_figure, palette, require_columns


# --------------------------------------------------------------------------- helpers
def _is_continuous(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    return pd.api.types.is_float_dtype(values) or values.nunique() > 12


def _split_groups(df: pd.DataFrame, split: Mapping) -> list[tuple[str, np.ndarray, str]]:
    if split is None:
        raise ValueError('color="split" needs split= (the dict from split_by_confidence)')
    if "example_id" not in df.columns:
        raise KeyError('color="split" needs an example_id column')
    ids = df["example_id"].astype(str)
    groups = []
    conf = ids.isin([str(i) for i in split["confident"]]).to_numpy()
    unconf = ids.isin([str(i) for i in split["unconfident"]]).to_numpy() & ~conf
    for name, mask in (("confident", conf), ("unconfident", unconf),
                       ("not in split", ~(conf | unconf))):
        if mask.any():
            groups.append((f"{name} (n={mask.sum():,})", mask, SPLIT_COLORS[name]))
    return groups


def _category_groups(values: pd.Series, name: str) -> list[tuple[str, np.ndarray, str]]:
    if pd.api.types.is_bool_dtype(values):
        cats, labels = [False, True], [f"not {name}", name]
    else:
        cats = sorted(values.dropna().unique(), key=str)
        labels = [str(c) for c in cats]
    groups = []
    for cat, lab, colour in zip(cats, labels, palette(len(cats))):
        mask = (values == cat).to_numpy()
        if mask.any():
            groups.append((f"{lab} (n={mask.sum():,})", mask, colour))
    return groups


def _color_groups(df, color, split):
    """None for a continuous colour column, else [(label, mask, colour), ...]."""
    if color == "split":
        return _split_groups(df, split)
    require_columns(df, [color], "the table")
    return None if _is_continuous(df[color]) else _category_groups(df[color], color)


def _colorbar(fig, mappable, *, label, cax=None, ax=None):
    values = np.asarray(mappable.get_array(), dtype=float)
    low = np.nanmin(values) < mappable.norm.vmin
    high = np.nanmax(values) > mappable.norm.vmax
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (low, high), "neither")  # arrows show the colour scale was clipped
    # A separate, opaque mappable: the bar keeps full colours when the dots are translucent.
    opaque = ScalarMappable(norm=mappable.norm, cmap=mappable.get_cmap())
    cbar = fig.colorbar(opaque, cax=cax, ax=None if cax is not None else ax, extend=extend)
    cbar.set_label(label)
    return cbar


def _marker_size(n: int) -> float:
    return 18.0 if n <= 1000 else 6.0 if n <= 10000 else 2.0


def _scatter(ax, df, x, y, color, split, rng):
    """Scatter coloured by a column; returns (mappable or None, groups or None)."""
    n = len(df)
    size, alpha = _marker_size(n), (0.8 if n <= 1000 else 0.5)
    groups = _color_groups(df, color, split)
    if groups is None:
        # Random drawing order so no region is systematically painted last.
        order = rng.permutation(n)
        values = df[color].to_numpy(dtype=float)[order]
        if color == "correctness":
            lims = (0.0, 1.0)
        else:
            # Perplexity-based confidence has a long tail that would paint almost every
            # point one colour; clip the colour scale to the 2nd-98th percentile.
            lims = tuple(np.nanpercentile(values, [2, 98]))
            if lims[0] == lims[1]:
                lims = (np.nanmin(values), np.nanmax(values))
        sc = ax.scatter(df[x].to_numpy()[order], df[y].to_numpy()[order], c=values,
                        cmap=CMAP, vmin=lims[0], vmax=lims[1], s=size, alpha=alpha,
                        linewidths=0, rasterized=n > 5000)
        return sc, None
    # Past the 8 Okabe-Ito colours no palette keeps every group apart: a marker shape per
    # group as well makes each one identifiable from the legend.
    markers = marker_cycle(len(groups))
    for (label, mask, colour), marker in zip(groups, markers):
        ax.scatter(df[x].to_numpy()[mask], df[y].to_numpy()[mask], color=colour, s=size * (1.4 if marker != "o" else 1),
                   alpha=alpha, linewidths=0, label=label, marker=marker, rasterized=n > 5000)
    return None, groups


def _subsample(df, max_points, seed):
    if max_points is None or len(df) <= max_points:
        return df, ""
    keep = np.sort(np.random.default_rng(seed).choice(len(df), max_points, replace=False))
    return df.iloc[keep], f"showing a random {max_points:,} of {len(df):,} examples"


def _hist_bins(values: np.ndarray, max_bins: int = 60) -> np.ndarray:
    values = values[np.isfinite(values)]
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) > max_bins + 1:
        edges = np.linspace(values.min(), values.max(), max_bins + 1)
    return edges


# --------------------------------------------------------------------- dynamics map
def plot_dynamics_map(table: pd.DataFrame, *, split: Mapping | None = None,
                      color: str = "correctness", scale: str = "prob", ax=None,
                      max_points: int | None = 20000, seed: int = 0) -> Figure:
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
    """
    if scale not in ("prob", "perplexity"):
        raise ValueError(f'scale must be "prob" or "perplexity", got {scale!r}')
    x, y = ("variability_prob", "confidence_prob") if scale == "prob" else \
        ("variability", "confidence")
    require_columns(table, [x, y], "the dynamics table")
    data, note = _subsample(table, max_points, seed)
    rng = np.random.default_rng(seed)

    if ax is None:
        fig = new_figure((7.4, 6.6))
        gs = fig.add_gridspec(2, 3, width_ratios=[4, 1, 0.18], height_ratios=[1, 4])
        ax = fig.add_subplot(gs[1, 0])
        ax_top = fig.add_subplot(gs[0, 0], sharex=ax)
        ax_right = fig.add_subplot(gs[1, 1], sharey=ax)
        corner = fig.add_subplot(gs[0, 1:])
        corner.axis("off")
    else:
        fig, ax_top, ax_right, corner = ax.get_figure(root=True), None, None, None

    mappable, groups = _scatter(ax, data, x, y, color, split, rng)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    box = dict(boxstyle="round,pad=0.25", facecolor="white", alpha=0.75, linewidth=0)
    for text, pos, ha, va in (("easy-to-learn", (0.02, 0.98), "left", "top"),
                              ("hard-to-learn", (0.02, 0.02), "left", "bottom"),
                              ("ambiguous", (0.98, 0.5), "right", "center")):
        ax.text(*pos, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
                style="italic", bbox=box, zorder=5)

    if ax_top is not None:
        masks = [(m, c) for _, m, c in groups] if groups else [(slice(None), "0.45")]
        for col, hax, orient in ((x, ax_top, "vertical"), (y, ax_right, "horizontal")):
            bins = _hist_bins(data[col].to_numpy(dtype=float))
            for mask, colour in masks:
                hax.hist(data[col].to_numpy()[mask], bins=bins, histtype="step",
                         color=colour, orientation=orient, linewidth=1.2)
            hax.spines[["top", "right"]].set_visible(False)
        ax_top.tick_params(labelbottom=False)
        ax_right.tick_params(labelleft=False)
        ax_top.set_ylabel("count")
        ax_right.set_xlabel("count")

    if mappable is not None:
        cax = fig.add_subplot(gs[1, 2]) if corner is not None else None
        _colorbar(fig, mappable, label=axis_label(color), cax=cax, ax=ax)
    elif corner is not None:
        handles, labels = ax.get_legend_handles_labels()
        title = "split" if color == "split" else color
        corner.legend(handles, labels, loc="center", title=title, frameon=False,
                      markerscale=max(1.0, 6 / math.sqrt(_marker_size(len(data)))))
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title="split" if color == "split" else color)

    title = "Training-dynamics map" + (f"\n({note})" if note else "")
    (fig.suptitle(title) if ax_top is not None else ax.set_title(title))
    return fig


# ---------------------------------------------------------------------- histograms
def _threshold_line(ax, split, metric):
    if split is None or "threshold" not in split:
        return
    if split.get("metric", metric) != metric:
        return  # a threshold on another metric would mislead on this axis
    t = float(split["threshold"])
    ax.axvline(t, color="black", linestyle="--", linewidth=1.2)
    lo, hi = ax.get_xlim()
    right_half = t > lo + 0.6 * (hi - lo)
    label = f"threshold = {t:.3g}".replace("-", "\u2212")
    ax.annotate(label, xy=(t, 0.97), xycoords=ax.get_xaxis_transform(),
                xytext=(-4 if right_half else 4, 0), textcoords="offset points",
                ha="right" if right_half else "left", va="top", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.8,
                          linewidth=0))


def _log_perplexity_view(table, split, metric):
    """The paper's confidence (−mean perplexity) as log10 mean perplexity: the same order
    reversed, without the long tail that puts most examples into one bin."""
    values = np.log10(np.clip(-table[metric].to_numpy(dtype=float), 1e-12, None))
    if split is not None and "threshold" in split and split.get("metric", metric) == metric:
        split = {**split, "threshold": float(np.log10(max(-float(split["threshold"]), 1e-12)))}
    return values, split


LOG_PERPLEXITY_LABEL = "log\u2081\u2080 mean perplexity (= log\u2081\u2080 of \u2212confidence)"


def plot_confidence_hist(table: pd.DataFrame, *, split: Mapping | None = None,
                         metric: str = "confidence", by: str | None = None,
                         ax=None, log: bool = False) -> Figure:
    """Histogram of a dynamics metric with the split threshold marked.

    ``by`` (e.g. ``"task"`` or ``"noisy"``) draws one histogram per group: overlaid
    step histograms on shared bins for up to three groups or when ``ax`` is given,
    otherwise a grid of small multiples with shared axes (easier to read than many
    overlaid outlines). The threshold line is drawn only when the split was made on
    ``metric``. ``log``: for ``metric="confidence"`` (−mean perplexity, heavy-tailed)
    draw log10 of the mean perplexity instead (the axis label says so; confident examples on the left; the threshold is
    transformed alike); for any other metric, a log-scaled x axis.
    """
    require_columns(table, [metric] + ([by] if by else []), "the dynamics table")
    values = table[metric].to_numpy(dtype=float)
    label = axis_label(metric)
    if log and metric == "confidence" and np.all(values[np.isfinite(values)] < 0):
        values, split = _log_perplexity_view(table, split, metric)
        label = LOG_PERPLEXITY_LABEL
    elif log:
        positive = values[np.isfinite(values) & (values > 0)]
        if len(positive) != np.isfinite(values).sum():
            raise ValueError(f"log=True needs positive {metric} values")
        label += " (log scale)"
    bins = _hist_bins(values)
    if log and label.endswith("(log scale)"):
        bins = np.geomspace(values.min(), values.max(), min(len(bins), 61))
    groups = _category_groups(table[by], by) if by else None

    if groups and ax is None and len(groups) > 3:
        ncols = math.ceil(math.sqrt(len(groups)))
        nrows = math.ceil(len(groups) / ncols)
        fig = new_figure((3.2 * ncols + 0.6, 2.4 * nrows + 0.6))
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for a, (name, mask, colour) in zip(axes, groups):
            sns.histplot(x=values[mask], bins=bins, color=colour, alpha=0.85, ax=a)
            a.set(xlabel="", ylabel="")
            a.set_title(name, fontsize=10)
        axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.15)  # room for the threshold label
        for a in axes[: len(groups)]:
            _threshold_line(a, split, metric)
        for i, a in enumerate(axes[len(groups):], start=len(groups)):
            a.axis("off")
            axes[i - ncols].tick_params(labelbottom=True)  # the panel above shows the x axis
        if label.endswith("(log scale)"):
            axes[0].set_xscale("log")
        fig.supxlabel(label)
        fig.supylabel("examples")
        fig.suptitle(f"{label} by {by}")
        return fig

    fig, ax = figure_and_axes(ax, (6.4, 4.0))
    if groups:
        for name, mask, colour in groups:  # shared bins, so the outlines compare directly
            ax.hist(values[mask], bins=bins, histtype="step", linewidth=1.6, color=colour, label=name)
    else:
        ax.hist(values, bins=bins, color="#56B4E9", edgecolor="white", linewidth=0.4)
    if label.endswith("(log scale)"):
        ax.set_xscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the threshold label and legend
    _threshold_line(ax, split, metric)
    ax.set_xlabel(label)
    ax.set_ylabel("examples")
    short = "log\u2081\u2080 mean perplexity" if label == LOG_PERPLEXITY_LABEL else label  # the axis says the rest
    ax.set_title(f"Distribution of {short}" + (f" by {by}" if by else ""))
    if groups:
        ax.legend(frameon=False, fontsize=9, loc="upper left")
    return fig


def plot_confidence_by_task(table: pd.DataFrame, *, metric: str = "confidence", ax=None,
                            max_points: int | None = 5000, seed: int = 0) -> Figure:
    """Box plot per task (sorted by median, highest on top) with the examples as dots."""
    require_columns(table, ["task", metric], "the dynamics table")
    medians = table.groupby("task")[metric].median().sort_values()
    tasks = list(medians.index)
    fig, ax = figure_and_axes(ax, (6.4, 1.0 + 0.55 * len(tasks)))
    # seaborn draws the box per task; the examples go on top as jittered dots.
    sns.boxplot(data=table, x=metric, y="task", order=tasks, orient="h", width=0.5, showfliers=False,
                color="#56B4E9", boxprops=dict(alpha=0.6), medianprops=dict(color="black", linewidth=1.8), ax=ax)
    shown, note = _subsample(table, max_points, seed)
    rng = np.random.default_rng(seed)
    pos = shown["task"].map({t: i for i, t in enumerate(tasks)}).to_numpy(dtype=float)
    ax.scatter(shown[metric].to_numpy(dtype=float), pos + rng.uniform(-0.3, 0.3, len(pos)),
               s=_marker_size(len(shown)), color="#0072B2", alpha=0.45, linewidths=0,
               rasterized=len(shown) > 5000, zorder=3)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel(axis_label(metric))
    ax.set_ylabel("task")
    ax.set_title(f"{axis_label(metric)} by task" + (f"\n({note})" if note else ""))
    return fig


# ----------------------------------------------------------------------- projection
def plot_umap_confidence(projection: pd.DataFrame, *, color: str = "confidence",
                         split: Mapping | None = None, ax=None, method: str | None = None,
                         seed: int = 0) -> Figure:
    """Projection of the representation space (``x``, ``y``) coloured by ``color``.

    ``color``: ``"confidence"`` or any float column (continuous, colour bar),
    ``"split"`` (needs ``split``), or ``"task"`` / any categorical column. Merge the
    dynamics table into the projection on ``example_id`` to colour by its columns.
    ``method`` names the projection on the axes; by default ``projection.attrs["method"]``
    (set by :mod:`sftmix.analysis.projection`; kept by parquet, dropped by ``merge``), else "UMAP".
    """
    require_columns(projection, ["x", "y"], "the projection")
    method = method or projection.attrs.get("method", "UMAP")
    fig, ax = figure_and_axes(ax, (7.2, 5.2))
    mappable, _ = _scatter(ax, projection, "x", "y", color, split,
                           np.random.default_rng(seed))
    if mappable is not None:
        _colorbar(fig, mappable, label=axis_label(color), ax=ax)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title=color, markerscale=max(1.0, 6 / math.sqrt(_marker_size(len(projection)))))
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_xticks([])
    ax.set_yticks([])  # projection coordinates carry no units
    ax.set_title(f"{method} of the representation space, coloured by "
                 f"{'split' if color == 'split' else color}")
    return fig
