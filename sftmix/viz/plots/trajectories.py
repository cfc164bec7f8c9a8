"""Training dynamics as dynamics: examples across the reference checkpoints, the mean-over-
checkpoints split against the last-checkpoint split, and what the split also splits.

The numbers come from :mod:`sftmix.analysis.trajectories` and :mod:`sftmix.analysis.confounds`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...analysis.confounds import half_of, noise_precision_recall, split_by_task
from ...analysis.trajectories import checkpoint_columns, checkpoint_shares, checkpoint_steps, pick_examples
from ...recipe import SUMMARIES
from ._style import OKABE_ITO, SPLIT_COLORS, new_figure, require_columns

__all__ = ["plot_mean_vs_last", "plot_split_composition", "plot_trajectories"]


def _minus(value: float) -> str:
    return f"{value:.3g}".replace("-", "\u2212")


def plot_trajectories(table: pd.DataFrame, ids: Mapping[str, str] | Sequence[str] | None = None, *,
                      split: Mapping | None = None, shares: bool = True, ax=None) -> Figure:
    """Response perplexity of chosen examples at every reference checkpoint (log scale).

    ``ids``: ``{label: example_id}`` or a list of ids (default: :func:`pick_examples`). The
    grey band is the 10-90% range of every example, the grey line their median. With a split
    on ``confidence``, the dashed line is its threshold as a mean perplexity: an example whose
    *mean* over the checkpoints lies above it is unconfident. ``shares`` adds a panel with each
    checkpoint's share of the mean perplexity (early checkpoints weigh most; not with ``ax``).
    """
    require_columns(table, ["example_id", "confidence"], "the dynamics table")
    columns = checkpoint_columns(table, "ppl")
    steps = np.asarray(checkpoint_steps(table), dtype=float)
    if ids is None:
        ids = pick_examples(table, split=split)
    if not isinstance(ids, Mapping):
        ids = {str(i): str(i) for i in ids}
    if ax is not None:
        fig, axes, shares = ax.get_figure(root=True), [ax], False
    else:
        fig = new_figure((11.0 if shares else 6.6, 4.4))
        axes = fig.subplots(1, 2, width_ratios=[1.7, 1.0]) if shares else [fig.add_subplot()]
    ax = axes[0]
    ppl = table[columns].to_numpy(dtype=float)
    lo, mid, hi = np.nanpercentile(ppl, [10, 50, 90], axis=0)
    ax.fill_between(steps, lo, hi, color="0.85", label="10–90% of all examples", zorder=1)
    ax.plot(steps, mid, color="0.45", linewidth=1.4, label="median of all examples", zorder=2)
    rows = table.set_index(table["example_id"].astype(str))
    for (label, eid), colour in zip(ids.items(), OKABE_ITO):
        row = rows.loc[str(eid)]
        name = f"{label}: {row['task']}" if "task" in rows else str(label)
        if "noisy" in rows and bool(row["noisy"]):
            name += " (corrupted)"
        ax.plot(steps, row[columns].to_numpy(dtype=float), marker="o", color=colour, linewidth=1.8, zorder=3,
                label=name)
    perplexity = SUMMARIES[split["metric"]].perplexity if split is not None and split.get("metric") in SUMMARIES \
        else None
    if perplexity is not None:  # a split on minus a perplexity: its threshold is a perplexity on this axis
        ax.axhline(-float(split["threshold"]), color="black", linestyle="--", linewidth=1.1, zorder=2,
                   label=f"split threshold: {perplexity} {_minus(-float(split['threshold']))}")
    ax.set_yscale("log")
    ax.set_xticks(steps, [f"{int(s)}" for s in steps])
    ax.set_xlabel("reference checkpoint (training step)")
    ax.set_ylabel("response perplexity (log scale)")
    ax.set_title("Chosen examples across the reference checkpoints", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    if shares:
        share = checkpoint_shares(table)
        bars = axes[1].bar(range(len(share)), share["share"], color=OKABE_ITO[0], alpha=0.8)
        axes[1].axhline(1 / len(share), color="black", linestyle=":", linewidth=1, label="equal weight (1/C)")
        for bar, corr in zip(bars, share["rank_corr"]):
            axes[1].annotate(f"rank corr.\n{corr:.2f}", xy=(bar.get_x() + bar.get_width() / 2, bar.get_height()),
                             xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=7)
        axes[1].set_xticks(range(len(share)), [f"{int(s)}" for s in share["step"]])
        axes[1].set_ylim(0, max(1.0, float(share["share"].max()) * 1.3))
        axes[1].set_xlabel("reference checkpoint (training step)")
        axes[1].set_ylabel("mean share of an example's\nsummed perplexity")
        axes[1].set_title("What each checkpoint weighs in the mean perplexity\n(rank corr.: Spearman with the "
                          "mean's ranking)", fontsize=9)
        axes[1].legend(frameon=False, fontsize=7, loc="upper right")
    return fig


def plot_mean_vs_last(sides: pd.DataFrame, *, ax=None) -> Figure:
    """Each example's mean perplexity over the checkpoints (x, the paper's confidence) against its
    last checkpoint's (y), both log scale, from :func:`sftmix.analysis.trajectories.mean_vs_last`.
    The dashed lines are the two splits' thresholds; examples that change side are black."""
    require_columns(sides, ["confidence", "confidence_last", "side_mean", "changed"], "plot_mean_vs_last")
    if ax is None:
        fig = new_figure((6.4, 5.2))
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure(root=True)
    x, y = -sides["confidence"].to_numpy(dtype=float), -sides["confidence_last"].to_numpy(dtype=float)
    changed = sides["changed"].to_numpy(dtype=bool)
    size = 6.0 if len(sides) > 1000 else 14.0
    for half in ("confident", "unconfident"):
        keep = (sides["side_mean"] == half).to_numpy() & ~changed
        ax.scatter(x[keep], y[keep], s=size, color=SPLIT_COLORS[half], alpha=0.45, linewidths=0,
                   label=f"{half} in both (n={int(keep.sum()):,})")
    to_conf = changed & (sides["side_mean"] == "unconfident").to_numpy()
    ax.scatter(x[changed], y[changed], s=size * 1.6, color="black", alpha=0.8, linewidths=0,
               label=f"changes side (n={int(changed.sum()):,}: {int(to_conf.sum()):,} become confident, "
                     f"{int((changed & ~to_conf).sum()):,} unconfident)")
    t_mean, t_last = -float(sides.attrs["threshold_mean"]), -float(sides.attrs["threshold_last"])
    ax.axvline(t_mean, color="black", linestyle="--", linewidth=1)
    ax.axhline(t_last, color="black", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"mean perplexity over the checkpoints (dashed: split at {_minus(t_mean)})")
    ax.set_ylabel(f"perplexity at the last checkpoint (dotted: split at {_minus(t_last)})")
    ax.set_title(f"Mean over checkpoints vs last checkpoint: {int(changed.sum()):,} of {len(sides):,} examples "
                 "change side", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="upper left", markerscale=2.5)
    return fig


def plot_split_composition(table: pd.DataFrame, split: Mapping) -> Figure:
    """What the split also splits: (a) each task's share of the confident half, (b) answer
    length per half, (c) corrupted answers per half, with the noise precision and recall."""
    require_columns(table, ["example_id", "task"], "the dynamics table")
    by_task = split_by_task(table, split)
    half = half_of(table, split).to_numpy()
    has_len, has_noise = "n_tokens" in table, "noisy" in table
    panels = 1 + has_len + has_noise
    fig = new_figure((4.6 * panels + 0.6, 1.2 + 0.3 * len(by_task)))
    axes = np.atleast_1d(fig.subplots(1, panels, width_ratios=[1.3] + [1.0] * (panels - 1)))
    ax = axes[0]
    order = by_task.index[::-1]  # highest share on top
    ax.barh(range(len(order)), by_task.loc[order, "share_confident"], color=SPLIT_COLORS["confident"], alpha=0.85)
    for i, task in enumerate(order):
        ax.annotate(f"{by_task.loc[task, 'share_confident']:.0%} of {int(by_task.loc[task, 'examples'])}",
                    xy=(by_task.loc[task, "share_confident"], i), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ratio = float(split.get("ratio", len(split["confident"]) / (len(split["confident"]) + len(split["unconfident"]))))
    ax.axvline(ratio, color="black", linestyle="--", linewidth=1, label=f"the split ratio ({ratio:g})")
    ax.set_yticks(range(len(order)), order)
    ax.set_xlim(0, 1.18)
    ax.set_xlabel("share of the task's examples in the confident half")
    ax.set_title("(a) tasks", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    k = 1
    if has_len:
        ax = axes[k]
        k += 1
        lengths = [table["n_tokens"].to_numpy(dtype=float)[half == h] for h in ("confident", "unconfident")]
        bins = np.arange(0, max(float(np.max(table["n_tokens"])), 1) + 2) - 0.5
        for h, values in zip(("confident", "unconfident"), lengths):
            ax.hist(values, bins=bins, weights=np.full(len(values), 1 / max(len(values), 1)), histtype="step",
                    linewidth=1.6, color=SPLIT_COLORS[h], label=f"{h}: mean {values.mean():.1f} tokens")
            ax.axvline(values.mean(), color=SPLIT_COLORS[h], linestyle="--", linewidth=1)
        ax.set_xlabel("response tokens per answer")
        ax.set_ylabel("share of the half's examples")
        ax.set_title("(b) answer length", fontsize=10)
        ax.legend(frameon=False, fontsize=7)
    if has_noise:
        ax = axes[k]
        noisy = table["noisy"].to_numpy(dtype=bool)
        pr = noise_precision_recall(table, split)
        for i, h in enumerate(("confident", "unconfident")):
            clean_n, noisy_n = int(((half == h) & ~noisy).sum()), int(((half == h) & noisy).sum())
            ax.bar(i, clean_n, color=SPLIT_COLORS[h], alpha=0.35, label="clean" if i == 0 else None)
            ax.bar(i, noisy_n, bottom=clean_n, color="black", alpha=0.8, label="corrupted" if i == 0 else None)
            ax.annotate(f"{noisy_n} corrupted", xy=(i, clean_n + noisy_n), xytext=(0, 3), textcoords="offset points",
                        ha="center", fontsize=8)
        ax.set_xticks([0, 1], ["confident", "unconfident"])
        ax.set_ylabel("examples")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
        ax.set_title(f"(c) corrupted answers: {pr['n_caught']} of {pr['n_corrupted']} ({pr['recall']:.0%}) in\nthe "
                     f"unconfident half, {pr['precision']:.0%} of that half", fontsize=9)
        ax.legend(frameon=False, fontsize=7, loc="upper left")
    fig.suptitle("What the confidence split also splits", fontsize=11)
    return fig
