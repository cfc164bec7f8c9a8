"""Distributions of a dynamics metric: histograms (overall, by group) and per-task box plots,
with the split threshold drawn wherever the split was made on the metric shown.

The paper's confidence (−mean perplexity) is heavy-tailed: on a linear axis one bar holds
almost every example. ``log=True`` draws it as log₁₀ of the mean perplexity (the same order
reversed, confident examples on the left), with the threshold transformed alike.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ...analysis.confounds import half_of
from ...recipe import SUMMARIES
from ._style import axis_label, figure_and_axes, new_figure, require_columns
from .marks import NOISY_COLOR, NOISY_LABEL, category_groups, hist_bins, marker_size, subsample

__all__ = ["LOG_PERPLEXITY_LABEL", "Overflow", "log_perplexity_view", "plot_confidence_by_task", "plot_confidence_hist",
           "threshold_line"]


#: The axis label of the paper's confidence in its log view.
LOG_PERPLEXITY_LABEL = SUMMARIES["confidence"].log_label


def _perplexity_of(metric: str) -> str | None:
    """The perplexity a summary is minus (``"mean perplexity"`` for the paper's confidence), or None."""
    return SUMMARIES[metric].perplexity if metric in SUMMARIES else None


def _short_log(metric: str) -> str:
    return f"log\u2081\u2080 {_perplexity_of(metric)}"


def _is_log_view(metric: str, label: str) -> bool:
    return _perplexity_of(metric) is not None and label == SUMMARIES[metric].log_label


def _minus(text: str) -> str:
    return text.replace("-", "\u2212")


def threshold_line(ax, split, metric, *, vertical: bool = True, label_y: float = 0.97):
    """Draw the split threshold (``split["threshold"]``, already on this axis' scale) when the
    split was made on ``metric``; returns its value or None. A threshold moved to the log
    view (:func:`log_perplexity_view`) is labelled with the mean perplexity it stands for."""
    if split is None or "threshold" not in split:
        return None
    if split.get("metric", metric) != metric:
        return None  # a threshold on another metric would mislead on this axis
    t = float(split["threshold"])
    (ax.axvline if vertical else ax.axhline)(t, color="black", linestyle="--", linewidth=1.2, zorder=5)
    text = f"threshold = {_minus(f'{t:.3g}')}"
    if "log_view_of" in split:
        value = _minus(f"{split['log_view_of']:.3g}")
        text = f"threshold: {_perplexity_of(metric)} {10 ** t:.3g}\n({metric} {value})"
    if vertical:
        lo, hi = ax.get_xlim()
        right_half = t > lo + 0.6 * (hi - lo)
        ax.annotate(text, xy=(t, label_y), xycoords=ax.get_xaxis_transform(),
                    xytext=(-4 if right_half else 4, 0), textcoords="offset points",
                    ha="right" if right_half else "left", va="top" if label_y > 0.5 else "bottom", fontsize=9,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.8, linewidth=0))
    return t


def log_perplexity_view(values: np.ndarray, split, metric):
    """−perplexity (e.g. the paper's −mean perplexity) as log₁₀ perplexity, and the split with its threshold
    transformed."""
    values = np.log10(np.clip(-np.asarray(values, dtype=float), 1e-12, None))
    if split is not None and "threshold" in split and split.get("metric", metric) == metric:
        split = {**split, "threshold": float(np.log10(max(-float(split["threshold"]), 1e-12))),
                 "log_view_of": float(split["threshold"])}
    return values, split


def _values(table, metric, split, log):
    """(values on the drawn scale, split with its threshold on that scale, axis label)."""
    values = table[metric].to_numpy(dtype=float)
    label = axis_label(metric)
    if log and _perplexity_of(metric) is not None and np.all(values[np.isfinite(values)] < 0):
        values, split = log_perplexity_view(values, split, metric)
        return values, split, SUMMARIES[metric].log_label
    if log:
        positive = values[np.isfinite(values) & (values > 0)]
        if len(positive) != np.isfinite(values).sum():
            raise ValueError(f"log=True needs positive {metric} values")
        label += " (log scale)"
    return values, split, label


class Overflow(NamedTuple):
    """Examples drawn in the outermost bar: how many, on which side, and the most extreme value."""

    count: int = 0
    side: str = "last"
    extreme: float = float("nan")


def _clip_tail(values: np.ndarray, label: str, share: float = 0.005):
    """Values beyond the ``share`` / ``1 - share`` quantile on the side of a long tail are drawn
    in the outermost bar (a few huge perplexities would otherwise stretch the axis so that one
    bar holds most examples); returns the clipped values and an :class:`Overflow`."""
    finite = values[np.isfinite(values)]
    if label.endswith("(log scale)") or len(finite) < 50:
        return values, Overflow()
    lo_cap, hi_cap = (float(q) for q in np.quantile(finite, [share, 1 - share]))
    body = hi_cap - lo_cap
    if not body > 0:
        return values, Overflow()
    low_tail, high_tail = lo_cap - float(finite.min()), float(finite.max()) - hi_cap
    if max(low_tail, high_tail) < 0.5 * body:
        return values, Overflow()  # no long tail: nothing to clip
    if high_tail >= low_tail:
        over = Overflow(int((finite > hi_cap).sum()), "last", float(finite.max()))
        return np.where(np.isfinite(values), np.minimum(values, hi_cap), values), over
    over = Overflow(int((finite < lo_cap).sum()), "first", float(finite.min()))
    return np.where(np.isfinite(values), np.maximum(values, lo_cap), values), over


def _side_note(table, split, mask) -> str:
    """``"k of n (p%) unconfident"`` for the rows of ``mask``."""
    unconf = (half_of(table, split) == "unconfident").to_numpy()[mask]
    return f"{int(unconf.sum()):,} of {int(mask.sum()):,} ({unconf.mean():.0%}) in the unconfident half"


def plot_confidence_hist(table: pd.DataFrame, *, split: Mapping | None = None,
                         metric: str = "confidence", by: str | None = None,
                         ax=None, log: bool = False, stat: str = "count",
                         labels: Mapping | None = None) -> Figure:
    """Histogram of a dynamics metric with the split threshold marked.

    ``by`` (e.g. ``"task"`` or ``"noisy"``) draws one histogram per group: overlaid
    step histograms on shared bins for up to three groups or when ``ax`` is given,
    otherwise a grid of small multiples with shared axes. ``stat="share"`` normalises each
    group's histogram to its own size (groups of 250 and 2,250 examples compare directly).
    ``labels`` renames the groups (``{False: "clean", True: "corrupted"}``). The threshold
    line is drawn only when the split was made on ``metric``; with a split, each overlaid
    group's legend entry says how many of it fall in the unconfident half, and without
    groups the two halves' sizes are written beside the line. ``log``: see the module docs;
    for another metric, a log-scaled x axis.
    """
    if stat not in ("count", "share"):
        raise ValueError(f'stat must be "count" or "share", got {stat!r}')
    require_columns(table, [metric] + ([by] if by else []), "the dynamics table")
    on_split = split is not None and split.get("metric", metric) == metric and "example_id" in table
    raw_split = split
    values, split, label = _values(table, metric, split, log)
    log_view = _is_log_view(metric, label)
    values, overflow = _clip_tail(values, label)
    bins = hist_bins(values)
    if log and label.endswith("(log scale)"):
        bins = np.geomspace(values.min(), values.max(), min(len(bins), 61))
    groups = category_groups(table[by], by, labels) if by else None
    ylabel = "share of the group's examples" if stat == "share" else "examples"
    if overflow.count:
        label += (f"\n(the {overflow.side} bar also holds the {overflow.count} examples beyond it, "
                  f"{'down' if overflow.side == 'first' else 'up'} to {_minus(f'{overflow.extreme:.3g}')})")

    if groups and ax is None and len(groups) > 3:
        return _small_multiples(values, bins, groups, split, metric, label, by, ylabel, stat)

    fig, ax = figure_and_axes(ax, (6.4, 4.0))
    if groups:
        for name, mask, colour in groups:  # shared bins, so the outlines compare directly
            weights = np.full(int(mask.sum()), 1.0 / mask.sum()) if stat == "share" else None
            if on_split:
                name += f": {_side_note(table, raw_split, mask)}"
            ax.hist(values[mask], bins=bins, weights=weights, histtype="step", linewidth=1.6, color=colour,
                    label=name)
    else:
        weights = np.full(len(values), 1.0 / len(values)) if stat == "share" else None
        ax.hist(values, bins=bins, weights=weights, color="#56B4E9", edgecolor="white", linewidth=0.4)
    if label.endswith("(log scale)"):
        ax.set_xscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * (1.45 if groups and on_split else 1.15))  # room for label and legend
    t = threshold_line(ax, split, metric)
    if t is not None and not groups and on_split:
        _half_sizes(ax, t, raw_split, confident_left=log_view)
    ax.set_xlabel(label)
    ax.set_ylabel(ylabel)
    short = _short_log(metric) if log_view else axis_label(metric)  # the axis says the rest
    named = " vs ".join(str(v) for v in labels.values()) if (by and labels) else None
    ax.set_title(f"Distribution of {short}" + (f": {named}" if named else f" by {by}" if by else ""))
    if groups:
        ax.legend(frameon=False, fontsize=8 if on_split else 9, loc="upper left" if t is None else "center right")
    return fig


def _half_sizes(ax, t, split, *, confident_left: bool):
    n_conf, n_unconf = len(split["confident"]), len(split["unconfident"])
    left, right = (("confident", n_conf), ("unconfident", n_unconf)) if confident_left else \
        (("unconfident", n_unconf), ("confident", n_conf))
    ax.annotate(f"left of the line: the {left[0]} half, {left[1]:,} examples\n"
                f"right of the line: the {right[0]} half, {right[1]:,} examples", xy=(0.98, 0.8),
                xycoords="axes fraction", ha="right", va="top", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.3", facecolor="white", alpha=0.85, linewidth=0))


def _small_multiples(values, bins, groups, split, metric, label, by, ylabel, stat) -> Figure:
    ncols = math.ceil(math.sqrt(len(groups)))
    nrows = math.ceil(len(groups) / ncols)
    fig = new_figure((3.2 * ncols + 0.6, 2.4 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for a, (name, mask, colour) in zip(axes, groups):
        weights = np.full(int(mask.sum()), 1.0 / mask.sum()) if stat == "share" else None
        sns.histplot(x=values[mask], bins=bins, weights=weights, color=colour, alpha=0.85, ax=a)
        a.set(xlabel="", ylabel="")
        a.set_title(name, fontsize=10)
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.15)  # room for the threshold label
    for a in axes[: len(groups)]:
        threshold_line(a, split, metric)
    for i, a in enumerate(axes[len(groups):], start=len(groups)):
        a.axis("off")
        axes[i - ncols].tick_params(labelbottom=True)  # the panel above shows the x axis
    if label.endswith("(log scale)"):
        axes[0].set_xscale("log")
    fig.supxlabel(label)
    fig.supylabel(ylabel)
    fig.suptitle(f"{label} by {by}")
    return fig


def plot_confidence_by_task(table: pd.DataFrame, *, metric: str = "confidence", split: Mapping | None = None,
                            log: bool = False, ax=None, max_points: int | None = 5000, seed: int = 0,
                            noisy: bool | None = None) -> Figure:
    """Box plot per task (most confident on top) with the examples as dots.

    ``split``: draws its threshold (when made on ``metric``) and writes each task's share of
    the confident half at the right. ``noisy`` (default: when the table has a ``noisy``
    column) draws the corrupted answers as black crosses. ``log``: see the module docs.
    """
    require_columns(table, ["task", metric], "the dynamics table")
    on_split = split is not None and split.get("metric", metric) == metric and "example_id" in table
    raw_split = split
    values, split, label = _values(table, metric, split, log)
    frame = table.assign(_value=values)
    confident_low = _is_log_view(metric, label)  # low perplexity is confident
    medians = frame.groupby("task")["_value"].median().sort_values(ascending=confident_low)
    tasks = list(medians.index)
    fig, ax = figure_and_axes(ax, (6.8, 1.0 + 0.55 * len(tasks)))
    sns.boxplot(data=frame, x="_value", y="task", order=tasks, orient="h", width=0.5, showfliers=False,
                color="#56B4E9", boxprops=dict(alpha=0.6), medianprops=dict(color="black", linewidth=1.8), ax=ax)
    shown, note = subsample(frame, max_points, seed)
    rng = np.random.default_rng(seed)
    pos = shown["task"].map({t: i for i, t in enumerate(tasks)}).to_numpy(dtype=float)
    jitter = pos + rng.uniform(-0.3, 0.3, len(pos))
    flagged = shown["noisy"].to_numpy(dtype=bool) if "noisy" in shown and noisy is not False else \
        np.zeros(len(shown), dtype=bool)
    ax.scatter(shown["_value"].to_numpy(dtype=float)[~flagged], jitter[~flagged], s=marker_size(len(shown)),
               color="#0072B2", alpha=0.45, linewidths=0, rasterized=len(shown) > 5000, zorder=3,
               label="clean answer" if flagged.any() else "example")
    if flagged.any():
        ax.scatter(shown["_value"].to_numpy(dtype=float)[flagged], jitter[flagged], marker="x",
                   s=max(marker_size(len(shown)) * 1.5, 10), color=NOISY_COLOR, linewidths=0.7, zorder=4,
                   label=f"{NOISY_LABEL} (n={int(flagged.sum()):,})")
    if label.endswith("(log scale)"):
        ax.set_xscale("log")
    t = threshold_line(ax, split, metric, label_y=0.005) if on_split else None
    if on_split:
        share = (half_of(table, raw_split) == "confident").groupby(table["task"].to_numpy()).mean()
        for i, task in enumerate(tasks):
            ax.annotate(f"{share[task]:.0%}", xy=(1.0, i), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.annotate("share in the\nconfident half", xy=(1.0, 1.0), xycoords="axes fraction", xytext=(4, 4),
                    textcoords="offset points", va="bottom", fontsize=7)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel(label)
    ax.set_ylabel("task")
    if flagged.any():
        ax.legend(frameon=False, fontsize=8, loc="lower right" if confident_low else "lower left")
    what = _short_log(metric) if confident_low else label
    title = f"{what} by task" + (" (dashed: the split threshold)" if t is not None else "")
    ax.set_title(title + (f"\n({note})" if note else ""), fontsize=10)
    return fig
