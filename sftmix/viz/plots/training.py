"""Figures of training runs and their outcomes: loss curves, per-task results with intervals
and the Mixup weight's Beta(alpha, alpha) distribution.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import beta

from ...analysis.stats import t_interval, wilson_interval
from ._style import figure_and_axes, new_figure, palette, require_columns

__all__ = ["plot_lambda_distribution", "plot_results", "plot_training_curves"]


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


# --------------------------------------------------------------------------- results
def _intervals(data: pd.DataFrame, metric: str, n_examples: Mapping | None) -> tuple[pd.DataFrame, str]:
    """Per (task, method): mean and a 95% interval; and what the interval is, for the title."""
    rows = []
    seeds = sorted(data["seed"].unique())
    for (task, method), part in data.groupby(["task", "method"], sort=False):
        values = part[metric].to_numpy(dtype=float)
        mean, lo, hi = t_interval(values)  # NaN bounds for one seed
        if len(values) < 2 and n_examples and task in n_examples:
            lo, hi = wilson_interval(mean, n_examples[task])
        rows.append({"task": task, "method": method, "mean": mean, "lo": lo, "hi": hi, "n_seeds": len(values)})
    stats = pd.DataFrame(rows)
    if len(seeds) > 1:
        what = f"mean over {len(seeds)} seeds, 95% t-interval over seeds"
    elif n_examples:
        sizes = sorted({int(v) for k, v in n_examples.items() if k != "overall"})
        size = f"n = {sizes[0]}" if len(sizes) == 1 else f"n = {sizes[0]}–{sizes[-1]}"
        what = f"one seed; bars: 95% Wilson intervals, {size} held-out examples per task"
    else:
        what = "one seed: no interval"
    return stats, what


def plot_results(per_task: pd.DataFrame, *, metric: str = "accuracy", ax=None,
                 horizontal: bool | None = None, n_examples: Mapping | None = None, label: str | None = None
                 ) -> Figure:
    """Grouped bars: one group per task plus "overall", one bar per method, with 95% intervals.

    "overall" averages the tasks within each seed first. The interval is a t-interval over
    seeds when there are several; with one seed and ``n_examples`` (``{task: held-out
    examples}``) it is the Wilson interval of the proportion over those examples (the title
    says which). ``horizontal`` (default: more than 8 groups) puts the tasks on rows,
    "overall" on top. ``label`` names the metric on the axis and in the title.
    """
    label = label or metric
    require_columns(per_task, ["method", "seed", "task", metric], "the per-task results")
    methods = list(dict.fromkeys(per_task["method"]))
    tasks = sorted(per_task["task"].unique(), key=str)
    overall = (per_task.groupby(["method", "seed"], sort=False)[metric].mean()
               .reset_index().assign(task="overall"))
    data = pd.concat([per_task[["method", "seed", "task", metric]], overall])
    data["task"] = data["task"].astype(str)
    counts = dict(n_examples) if n_examples else None
    if counts:
        counts["overall"] = sum(int(counts.get(t, 0)) for t in tasks)
    stats, what = _intervals(data, metric, counts)
    groups = [str(t) for t in tasks] + ["overall"]
    if horizontal is None:
        horizontal = len(groups) > 8  # many tasks: one row each, readable at notebook width
    order = ["overall"] + groups[:-1] if horizontal else groups
    size = (6.4, 1.2 + 0.17 * len(order) * max(2, len(methods))) if horizontal else \
        (max(6.4, 1.1 * len(groups) * max(1, len(methods) / 2)), 4.2)
    fig, ax = figure_and_axes(ax, size)
    width = 0.8 / len(methods)
    for m, (method, colour) in enumerate(zip(methods, palette(len(methods)))):
        part = stats[stats["method"] == method].set_index("task").reindex(order)
        pos = np.arange(len(order)) + (m - (len(methods) - 1) / 2) * width
        err = np.vstack([part["mean"] - part["lo"], part["hi"] - part["mean"]])
        # (clip rounding: a proportion of 1.0 has an upper Wilson bound of 1.0 minus a few ulps)
        err = None if np.isnan(err).all() else np.clip(np.nan_to_num(err), 0.0, None)
        draw = ax.barh if horizontal else ax.bar
        bars = draw(pos, part["mean"], width * 0.95, color=colour, label=method)
        if err is not None:
            kw = dict(xerr=err) if horizontal else dict(yerr=err)
            ax.errorbar(part["mean"] if horizontal else pos, pos if horizontal else part["mean"], fmt="none",
                        ecolor="0.2", elinewidth=1, capsize=2.5, **kw)
        bars.set_label(method)
    top = float(np.nanmax(np.r_[stats["hi"].to_numpy(dtype=float), stats["mean"].to_numpy(dtype=float)]))
    limit = min(1.0, top) * 1.12 if top > 0 else 1
    if horizontal:
        ax.set_yticks(range(len(order)), order)
        ax.invert_yaxis()  # "overall" on top
        ax.axhline(0.5, color="0.7", linewidth=0.8)  # "overall" apart from the tasks
        ax.set_xlim(0, limit)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(frameon=True, framealpha=0.9, ncols=1, loc="lower right", fontsize=9)
    else:
        long_names = max(len(g) for g in groups) > 10 or len(groups) > 8
        ax.set_xticks(range(len(order)), order, rotation=30 if long_names else 0,
                      ha="right" if long_names else "center")
        if len(groups) > 1:  # a rule sets "overall" apart from the tasks
            ax.axvline(len(groups) - 1.5, color="0.7", linewidth=0.8)
        ax.set_ylim(0, limit)
        ax.set_ylabel(label)
        ax.set_xlabel("task")
        ax.legend(frameon=False, ncols=min(len(methods), 4), loc="upper center", fontsize=9)
    ax.set_title(f"{label} per task\n({what})", fontsize=9)
    return fig


# ---------------------------------------------------------------------- mixup lambda
def _beta_pdf(x: np.ndarray, a: float) -> np.ndarray:
    return beta.pdf(x, a, a)


def plot_lambda_distribution(alpha: float, *, ax=None, n: int = 20000, seed: int = 0) -> Figure:
    """Histogram of ``lambda ~ Beta(alpha, alpha)`` draws with the analytic density; the shaded
    band and its legend entry give the share of draws with 0.1 < lambda < 0.9."""
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    fig, ax = figure_and_axes(ax, (6.0, 4.0))
    mid = float(((lam > 0.1) & (lam < 0.9)).mean())
    ax.axvspan(0.1, 0.9, color="0.92", zorder=0, label=f"0.1 < \u03bb < 0.9: {mid:.0%} of draws")
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
