"""Ablation figures: a metric against one swept setting (:func:`plot_ablation`), and every
cell's paired difference to the recipe with its 95% interval (:func:`plot_ablation_effects`).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from ...analysis.stats import t_half_width
from ._style import OKABE_ITO, figure_and_axes, new_figure, require_columns

__all__ = ["plot_ablation", "plot_ablation_effects", "plot_ablation_sweep"]


# -------------------------------------------------------------------------- ablation
def _mean_err(values: np.ndarray, error: str) -> tuple[float, float]:
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, 0.0
    sd = float(np.std(values, ddof=1))
    if error == "std":
        return mean, sd
    return mean, t_half_width(values)


def _baseline_stats(baseline) -> tuple[float, float, str]:
    if isinstance(baseline, Mapping):
        return float(baseline["mean"]), float(baseline.get("std", 0.0)), \
            str(baseline.get("label", "baseline"))
    if np.ndim(baseline) == 0:
        return float(baseline), 0.0, "baseline"
    vals = np.asarray(baseline, dtype=float)
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, "baseline"


def plot_ablation(results: pd.DataFrame, *, param: str, metric: str, ax=None,
                  baseline=None, error: str = "std", min_span: float | None = None) -> Figure:
    """Metric against the swept value of one parameter, mean and spread over seeds.

    Numeric values go on a numeric axis (log-scaled when positive and spanning a factor
    of 20 or more); strings (e.g. pairing strategies) on a categorical axis in order of
    first appearance. ``error`` is ``"std"`` or ``"ci95"`` (t-interval). ``baseline`` is
    a number, a list of per-seed values, or ``{"mean", "std", "label"}``: drawn as a
    horizontal line with a mean ± std band. ``min_span``: the least height of the y range
    (default 10% of the metric's level; 0 turns it off), so noise does not look like a trend.
    The legend sits above the axes, under the title.
    """
    if error not in ("std", "ci95"):
        raise ValueError('error must be "std" or "ci95"')
    require_columns(results, ["param", "value", metric], "the ablation results")
    rows = results[results["param"] == param]
    if rows.empty:
        raise ValueError(f"no rows for param={param!r}; have {sorted(results['param'].unique())}")
    numeric = pd.to_numeric(rows["value"], errors="coerce")
    is_numeric = bool(numeric.notna().all())
    fig, ax = figure_and_axes(ax, (6.4, 4.2))

    if is_numeric:
        keys = sorted(numeric.unique())
        xs = {k: float(k) for k in keys}
        vals = numeric
    else:
        keys = list(dict.fromkeys(rows["value"].astype(str)))
        xs = {k: float(i) for i, k in enumerate(keys)}
        vals = rows["value"].astype(str)
    stats = [_mean_err(rows.loc[vals == k, metric].to_numpy(dtype=float), error) for k in keys]
    n_seeds = sorted({int((vals == k).sum()) for k in keys})
    seeds = f"n={n_seeds[0]}" if len(n_seeds) == 1 else f"n={n_seeds[0]}\u2013{n_seeds[-1]}"

    pos = np.array([xs[k] for k in vals])
    jitter = 0.0 if is_numeric else np.random.default_rng(0).uniform(-0.08, 0.08, len(pos))
    dots = ax.scatter(pos + jitter, rows[metric].to_numpy(dtype=float), color="#0072B2",
                      alpha=0.3, s=16, linewidths=0, zorder=2)
    means = ax.errorbar([xs[k] for k in keys], [m for m, _ in stats],
                        yerr=[e for _, e in stats], color="#0072B2", marker="o", capsize=4,
                        linewidth=1.6, zorder=3,
                        linestyle="-" if is_numeric else "none")  # no trend between unordered choices
    handles = [means, dots]
    labels = [f"mean \u00b1 {'std' if error == 'std' else '95% CI'} ({seeds} seeds)",
              "individual seeds"]
    if baseline is not None:
        b_mean, b_std, b_label = _baseline_stats(baseline)
        line = ax.axhline(b_mean, color="black", linestyle="--", linewidth=1.2, zorder=1)
        handles.append(line)
        labels.append(f"{b_label}: mean" + (" \u00b1 std" if b_std else ""))
        if b_std:
            ax.axhspan(b_mean - b_std, b_mean + b_std, color="0.5", alpha=0.18,
                       linewidth=0, zorder=0)
            # The legend shows the band (a little darker, it is small) under the line.
            handles[-1] = (Patch(facecolor="0.5", alpha=0.35, linewidth=0), line)
    if is_numeric:
        if keys[0] > 0 and keys[-1] / keys[0] >= 20:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks([xs[k] for k in keys], [f"{k:g}" for k in keys])
    else:
        ax.set_xticks(range(len(keys)), keys)
        if sum(len(str(k)) for k in keys) > 40:  # long names (pairing strategies) would collide
            ax.tick_params(axis="x", labelrotation=20)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
        ax.set_xlim(-0.5, len(keys) - 0.5)
    _min_span(ax, rows[metric].to_numpy(dtype=float), min_span)
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    # The legend sits between the title and the axes: it never covers a point, and rotated
    # category labels (added by callers such as plot_sweep) cannot run into it.
    ax.set_title(f"{metric} vs {param}", pad=22)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncols=len(handles), handlelength=1.5, columnspacing=1.0, borderaxespad=0.2)
    return fig


def _min_span(ax, values: np.ndarray, min_span) -> None:
    """Widen the y range to at least ``min_span`` (default: 10% of the values' level, e.g.
    ±0.075 around an NLL of 1.5) so that differences of a few thousandths, within the
    spread over seeds, do not fill the panel and look like a trend."""
    values = values[np.isfinite(values)]
    if min_span == 0 or not len(values):
        return
    centre = float(np.mean(values))
    span = float(min_span) if min_span is not None else max(0.1 * abs(centre), 0.02)
    lo, hi = ax.get_ylim()
    if hi - lo < span:
        mid = (lo + hi) / 2
        ax.set_ylim(mid - span / 2, mid + span / 2)
        ax.annotate(f"y range widened to {span:.3g}: the differences are smaller than this",
                    xy=(0.99, 0.98), xycoords="axes fraction", ha="right", va="top", fontsize=7, color="0.35")


# ---------------------------------------------------------------- paired effects
def plot_ablation_effects(effects: pd.DataFrame, *, metric: str, higher_is_better: bool = True, ax=None,
                          title: str | None = None) -> Figure:
    """Forest plot: each ablation cell minus the recipe, paired by seed, with its 95% t-interval.

    ``effects``: rows with ``param``, ``value``, ``n_seeds``, ``diff``, ``ci95_low``, ``ci95_high``
    (as :func:`sftmix.pipeline.ablation.effects_table` returns; the recipe's own rows are
    skipped). An interval that excludes zero is drawn in colour (blue where the cell beats
    the recipe, vermilion where it is worse), the others in grey. Rows are grouped by param.
    """
    require_columns(effects, ["param", "value", "n_seeds", "diff", "ci95_low", "ci95_high"], "the effects table")
    rows = effects[effects.get("verdict", pd.Series("", index=effects.index)) != "centre"].reset_index(drop=True)
    if rows.empty:
        raise ValueError("the effects table has no cell besides the recipe")
    fig, ax = figure_and_axes(ax, (6.6, 0.9 + 0.32 * len(rows)))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows.itertuples()):
        lo, hi = float(r.ci95_low), float(r.ci95_high)
        sign = 1.0 if higher_is_better else -1.0
        clear = np.isfinite(lo) and (lo > 0 or hi < 0)
        colour = (OKABE_ITO[0] if sign * r.diff > 0 else OKABE_ITO[5]) if clear else "0.45"
        if np.isfinite(lo):
            ax.plot([lo, hi], [yi, yi], color=colour, linewidth=2.0, solid_capstyle="butt")
        ax.plot([r.diff], [yi], marker="o", color=colour, markersize=5)
    ax.axvline(0, color="black", linewidth=1)
    labels = ["NTP (no Mixup)" if r.param == "ntp_baseline" else f"{r.param} = {_fmt(r.value)}"
              for r in rows.itertuples()]
    ax.set_yticks(y, labels, fontsize=8)
    previous = None
    for yi, param in zip(y, rows["param"]):  # a rule between params
        if previous is not None and param != previous:
            ax.axhline(yi + 0.5, color="0.85", linewidth=0.8)
        previous = param
    left, right = ("recipe better", "variant better") if higher_is_better else ("variant better", "recipe better")
    ax.set_xlabel(f"{metric}: cell − recipe, paired by seed\n(← {left} | {right} →)", fontsize=9)
    seeds = sorted({int(n) for n in rows["n_seeds"]})
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    ax.set_title(title or f"Each setting against the recipe: mean difference and 95% t-interval over {n} seeds",
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_ablation_sweep(results: pd.DataFrame, metric: str, *, params: Sequence[str], baseline=None,
                        categorical: Sequence[str] = (), error: str = "std") -> Figure:
    """One :func:`plot_ablation` panel per parameter in ``params`` (two per row), each with the
    ``baseline`` band; the labels of ``categorical`` parameters are slanted so long names do not overlap."""
    params = list(params)
    if not params:
        raise ValueError("the results table has no swept parameter")
    ncols = min(2, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = new_figure((6.0 * ncols, 4.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, param in zip(axes, params):
        plot_ablation(results, param=param, metric=metric, ax=ax, baseline=baseline, error=error)
        if param in categorical:
            ax.tick_params(axis="x", labelrotation=15)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
    for ax in axes[len(params):]:
        ax.axis("off")
    fig.suptitle(f"Ablations around the default recipe: {metric}")
    return fig


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
