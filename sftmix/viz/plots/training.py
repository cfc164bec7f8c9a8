"""Figures of training runs and their outcomes: loss curves, the Mixup weight's
Beta(alpha, alpha) distribution, ablation sweeps and per-task results.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from ._style import figure_and_axes, new_figure, palette, require_columns


# ------------------------------------------------------------------- training curves
def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    # Bias-corrected exponential moving average (as in TensorBoard).
    out, acc = np.empty_like(values, dtype=float), 0.0
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        out[i] = acc / (1 - weight ** (i + 1))
    return out


def _series(history: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((e["step"], e[key]) for e in history if key in e and "step" in e)
    if not pts:
        return np.array([]), np.array([])
    steps, vals = zip(*pts)
    return np.asarray(steps, dtype=float), np.asarray(vals, dtype=float)


def plot_training_curves(histories: Mapping[str, Sequence[Mapping]], *, parts: bool = True,
                         smooth: float = 0.0, ax=None) -> Figure:
    """Training loss per run against step, from ``Trainer.state.log_history`` lists.

    ``histories`` maps a run label to its log history. ``eval_loss`` entries are drawn
    as markers. With ``parts`` and logs holding ``ntp_loss``/``mixup_loss`` a second
    panel shows the two parts (needs ``ax=None``). ``smooth`` in [0, 1) is the weight
    of an exponential moving average; the raw curve stays visible, faint.
    """
    if not histories:
        raise ValueError("histories is empty")
    if not 0.0 <= smooth < 1.0:
        raise ValueError("smooth must be in [0, 1)")
    has_parts = parts and any(("ntp_loss" in e or "mixup_loss" in e)
                              for h in histories.values() for e in h)
    if ax is None:
        fig = new_figure((11.0 if has_parts else 6.4, 4.2))
        axes = fig.subplots(1, 2 if has_parts else 1, sharex=True, squeeze=False).ravel()
    else:
        fig, axes, has_parts = ax.get_figure(root=True), [ax], False

    def curve(a, steps, vals, colour, label, style="-"):
        if smooth > 0:
            a.plot(steps, vals, color=colour, alpha=0.25, linewidth=1, linestyle=style)
            vals = _ema(vals, smooth)
        # A short run logs a handful of points (one, in a notebook's fast mode): markers
        # keep a single point visible, where a line alone would draw nothing.
        a.plot(steps, vals, color=colour, linewidth=1.6, linestyle=style, label=label,
               marker="o" if len(steps) <= 12 else None, markersize=5)

    for (run, history), colour in zip(histories.items(), palette(len(histories))):
        steps, loss = _series(history, "loss")
        if len(steps):
            curve(axes[0], steps, loss, colour, f"{run} train")
        else:  # a run shorter than logging_steps logs only its mean loss, at its last step
            steps, loss = _series(history, "train_loss")
            if len(steps):
                curve(axes[0], steps, loss, colour, f"{run} train (mean over the run)")
        e_steps, e_loss = _series(history, "eval_loss")
        if len(e_steps):
            axes[0].plot(e_steps, e_loss, color=colour, marker="o", linestyle=":",
                         markersize=5, label=f"{run} eval")
        if has_parts:
            for key, name, style in (("ntp_loss", "NTP", "-"), ("mixup_loss", "Mixup", "--")):
                p_steps, p_vals = _series(history, key)
                if len(p_steps):
                    curve(axes[1], p_steps, p_vals, colour, f"{run} \u00b7 {name}", style)
    axes[0].set_title("Total loss" + (f" (EMA smoothing {smooth:g})" if smooth else ""))
    axes[0].set_ylabel("loss")
    if has_parts:
        axes[1].set_title("Loss parts: NTP (solid) and Mixup (dashed)")
        axes[1].set_ylabel("loss")
    for a in axes:
        a.set_xlabel("training step")
        a.legend(frameon=False, fontsize=9)
        a.grid(alpha=0.3)
    return fig


# -------------------------------------------------------------------------- ablation
def _mean_err(values: np.ndarray, error: str) -> tuple[float, float]:
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, 0.0
    sd = float(np.std(values, ddof=1))
    if error == "std":
        return mean, sd
    try:
        from scipy.stats import t
        q = float(t.ppf(0.975, n - 1))
    except ImportError:  # normal approximation
        q = 1.96
    return mean, q * sd / math.sqrt(n)


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
                        linewidth=1.6, zorder=3)
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


# --------------------------------------------------------------------------- results
def plot_results(per_task: pd.DataFrame, *, metric: str = "accuracy", ax=None,
                 horizontal: bool | None = None) -> Figure:
    """Grouped bars: one group per task plus "overall", one bar per method, mean ± std
    over seeds. "overall" averages the tasks within each seed first. ``horizontal``
    (default: more than 8 groups) puts the tasks on rows, "overall" on top."""
    require_columns(per_task, ["method", "seed", "task", metric], "the per-task results")
    methods = list(dict.fromkeys(per_task["method"]))
    tasks = sorted(per_task["task"].unique(), key=str)
    overall = (per_task.groupby(["method", "seed"], sort=False)[metric].mean()
               .reset_index().assign(task="overall"))
    data = pd.concat([per_task[["method", "seed", "task", metric]], overall])
    data["task"] = data["task"].astype(str)
    stats = data.groupby(["task", "method"])[metric].agg(["mean", "std", "count"])
    groups = [str(t) for t in tasks] + ["overall"]

    if horizontal is None:
        horizontal = len(groups) > 8  # many tasks: one row each, readable at notebook width
    if horizontal:
        return _results_horizontal(data, stats, groups, methods, metric, ax)
    fig, ax = figure_and_axes(ax, (max(6.4, 1.1 * len(groups) * max(1, len(methods) / 2)), 4.2))
    # Mean bars with +-1 std over seeds, one colour per method (seaborn groups and dodges them).
    sns.barplot(data=data, x="task", y=metric, hue="method", order=groups, hue_order=methods,
                palette=palette(len(methods)), errorbar="sd", capsize=0.15, err_kws={"linewidth": 1}, legend=False,
                ax=ax)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)][-len(methods):]
    for container, method in zip(bars, methods):  # one container per method, in hue order
        container.set_label(method)
    if len(groups) > 1:  # a rule sets "overall" apart from the tasks
        ax.axvline(len(groups) - 1.5, color="0.7", linewidth=0.8)
    long_names = max(len(g) for g in groups) > 10 or len(groups) > 8
    ax.set_xticks(range(len(groups)), groups, rotation=30 if long_names else 0,
                  ha="right" if long_names else "center")
    top = float(np.nanmax(stats["mean"] + stats["std"].fillna(0)))
    ax.set_ylim(0, top * 1.2 if top > 0 else 1)
    ax.set_ylabel(metric)
    ax.set_xlabel("task")
    ax.set_title(_per_task_title(stats, metric))
    ax.legend(frameon=False, ncols=min(len(methods), 4), loc="upper center", fontsize=9)
    return fig


def _per_task_title(stats, metric: str) -> str:
    n = sorted(stats["count"].unique())
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}\u2013{n[-1]}"
    return f"{metric} per task (mean \u00b1 std over {seeds} seeds)"


def _results_horizontal(data, stats, groups, methods, metric, ax) -> Figure:
    order = ["overall"] + groups[:-1]
    fig, ax = figure_and_axes(ax, (6.4, 1.2 + 0.17 * len(order) * max(2, len(methods))))
    sns.barplot(data=data, y="task", x=metric, hue="method", order=order, hue_order=methods, orient="h",
                palette=palette(len(methods)), errorbar="sd", capsize=0.15, err_kws={"linewidth": 1}, legend=False,
                ax=ax)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)][-len(methods):]
    for container, method in zip(bars, methods):
        container.set_label(method)
    ax.axhline(0.5, color="0.7", linewidth=0.8)  # "overall" apart from the tasks
    top = float(np.nanmax(stats["mean"] + stats["std"].fillna(0)))
    ax.set_xlim(0, top * 1.15 if top > 0 else 1)
    ax.set_xlabel(metric)
    ax.set_ylabel("")
    ax.set_title(_per_task_title(stats, metric))
    ax.legend(frameon=False, ncols=min(len(methods), 4), loc="lower center", bbox_to_anchor=(0.5, 1.04),
              fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return fig


# ---------------------------------------------------------------------- mixup lambda
def _beta_pdf(x: np.ndarray, a: float) -> np.ndarray:
    try:
        from scipy.stats import beta
        return beta.pdf(x, a, a)
    except ImportError:
        log_norm = math.lgamma(2 * a) - 2 * math.lgamma(a)
        return np.exp(log_norm + (a - 1) * (np.log(x) + np.log1p(-x)))


def plot_lambda_distribution(alpha: float, *, ax=None, n: int = 20000, seed: int = 0) -> Figure:
    """Histogram of ``lambda ~ Beta(alpha, alpha)`` draws with the analytic density."""
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    fig, ax = figure_and_axes(ax, (6.0, 4.0))
    heights, _, _ = ax.hist(lam, bins=50, range=(0, 1), density=True, color="#56B4E9",
                            edgecolor="white", linewidth=0.4, label=f"{n:,} draws")
    grid = np.linspace(1e-4, 1 - 1e-4, 1001)
    ax.plot(grid, _beta_pdf(grid, alpha), color="#D55E00", linewidth=2,
            label="Beta density")
    # For alpha < 1 the density diverges at 0 and 1; scale to the histogram instead.
    ax.set_ylim(0, 1.25 * max(float(np.max(heights)), 1.0))
    ax.set_xlim(0, 1)
    ax.set_xlabel("\u03bb (weight of the confident example)")
    ax.set_ylabel("density")
    ax.set_title(f"\u03bb ~ Beta({alpha:.3g}, {alpha:.3g})")
    ax.legend(frameon=False, loc="best")
    return fig
