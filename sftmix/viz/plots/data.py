"""Figures of the data a run trains on: prompt and response lengths in tokens."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._style import figure_and_axes, require_columns

__all__ = ["plot_lengths"]


def plot_lengths(lengths: pd.DataFrame, *, max_length: int | None = None, ax=None) -> Figure:
    """Histogram of prompt and response lengths in tokens (columns ``prompt``, ``response``).

    With ``max_length`` (when it is within the drawn range) a dashed line marks it, and the
    legend counts the examples whose prompt + response is longer (they are truncated).
    """
    require_columns(lengths, ["prompt", "response"], "lengths")
    fig, ax = figure_and_axes(ax, (6.4, 3.6))
    top = int(max(lengths["prompt"].max(), lengths["response"].max(), 1))
    bins = np.linspace(0, top + 1, min(50, top + 2))
    for col, colour in (("prompt", "tab:blue"), ("response", "tab:orange")):
        ax.hist(lengths[col], bins=bins, alpha=0.6, color=colour,
                label=f"{col} (median {np.median(lengths[col]):.0f})")
    total_over = int((lengths["prompt"] + lengths["response"] > max_length).sum()) if max_length else 0
    if max_length and max_length <= top * 1.5:
        ax.axvline(max_length, color="black", linestyle="--", linewidth=1,
                   label=f"max_length {max_length} (on prompt + response: {total_over} truncated)")
    ax.set_xlabel("tokens per example")
    ax.set_ylabel("examples")
    ax.set_title(f"Prompt and response lengths ({len(lengths)} examples)")
    ax.legend(frameon=False)
    return fig
