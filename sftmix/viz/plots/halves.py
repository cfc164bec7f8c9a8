"""Why SFTMix should work, drawn: how well each half of the split is fit (training vs held-out),
and what a trained model makes of a mixed (confident, unconfident) pair along lambda.

The numbers come from :mod:`sftmix.analysis.halves` and :mod:`sftmix.analysis.mixing`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._style import OKABE_ITO, SPLIT_COLORS, figure_and_axes, new_figure, palette, require_columns

__all__ = ["plot_half_fit", "plot_lambda_curves"]


def plot_half_fit(fit: pd.DataFrame, *, ax=None) -> Figure:
    """NLL per response token of each model on each half, training (filled) and held-out
    (open), joined by a line whose length is the generalisation gap (written beside it).

    ``fit``: the long table of :func:`sftmix.analysis.halves.half_fit` (``model``, ``data``,
    ``half``, ``nll``, ``examples``).
    """
    require_columns(fit, ["model", "data", "half", "nll"], "plot_half_fit")
    models = list(dict.fromkeys(fit["model"]))
    fig, ax = figure_and_axes(ax, (6.8, 4.4))
    colours = dict(zip(models, palette(len(models))))
    ticks, names = [], []
    for h, half in enumerate(("confident", "unconfident")):
        for m, model in enumerate(models):
            x = h * (len(models) + 1) + m
            part = fit[(fit["model"] == model) & (fit["half"] == half)].set_index("data")["nll"]
            train, held = float(part.get("training", np.nan)), float(part.get("held-out", np.nan))
            ax.plot([x, x], [train, held], color=colours[model], linewidth=2, zorder=2)
            ax.plot([x], [train], marker="o", markersize=8, color=colours[model], zorder=3,
                    label=f"{model}: training" if h == 0 else None)
            ax.plot([x], [held], marker="o", markersize=8, markerfacecolor="white", markeredgewidth=2,
                    color=colours[model], zorder=3, label=f"{model}: held-out" if h == 0 else None)
            ax.annotate(f"gap {held - train:+.3f}", xy=(x, (train + held) / 2), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8)
            ticks.append(x)
            names.append(model)
        ax.annotate(f"{half} half", xy=(h * (len(models) + 1) + (len(models) - 1) / 2, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(0, 4), textcoords="offset points", ha="center",
                    va="bottom", fontsize=10, color=SPLIT_COLORS[half], fontweight="bold")
    ax.set_xticks(ticks, names)
    ax.set_xlim(-0.7, ticks[-1] + 1.2)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("NLL per response token (nats)")
    ax.set_title("Fit per half of the split: training (filled) vs held-out (open)\n", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="upper left", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_lambda_curves(curves: Mapping[str, pd.DataFrame], *, title: str | None = None) -> Figure:
    """p(y_c) (solid) and p(y_u) (dashed) of the mixed state along lambda for each model, beside
    the pair's Mixup loss. ``curves``: ``{model label: lambda_curves(...) frame}``. The grey
    lines are what the Mixup loss asks for: lambda on y_c and 1 - lambda on y_u."""
    if not curves:
        raise ValueError("plot_lambda_curves needs at least one model's curves")
    for frame in curves.values():
        require_columns(frame, ["lam", "p_confident", "p_unconfident", "mixup_loss"], "plot_lambda_curves")
    fig = new_figure((10.5, 3.9))
    left, right = fig.subplots(1, 2, width_ratios=[1.5, 1.0])
    grid = np.linspace(0, 1, 11)
    left.plot(grid, grid, color="0.7", linewidth=1, label="target for y_c: λ")
    left.plot(grid, 1 - grid, color="0.7", linewidth=1, linestyle="--", label="target for y_u: 1 − λ")
    for (label, frame), colour in zip(curves.items(), OKABE_ITO):
        left.plot(frame["lam"], frame["p_confident"], color=colour, linewidth=2, label=f"{label}: p(y_c)")
        left.plot(frame["lam"], frame["p_unconfident"], color=colour, linewidth=2, linestyle="--",
                  label=f"{label}: p(y_u)")
        right.plot(frame["lam"], frame["mixup_loss"], color=colour, linewidth=2, label=label)
    left.set_xlim(0, 1)
    left.set_ylim(0, 1.02)
    left.set_xlabel("λ (weight of the confident example)")
    left.set_ylabel("probability of the gold token")
    left.set_title(title or "The mixed state's probabilities along λ", fontsize=10)
    left.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    right.set_xlim(0, 1)
    right.set_ylim(bottom=0)
    right.set_xlabel("λ")
    right.set_ylabel("Mixup loss of the pair (nats)")
    right.set_title("λ·CE(y_c) + (1 − λ)·CE(y_u), mean over positions", fontsize=9)
    right.legend(frameon=False, fontsize=8)
    for a in (left, right):
        a.grid(alpha=0.3)
    return fig
