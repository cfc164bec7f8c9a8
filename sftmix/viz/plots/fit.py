"""The reference run's fit per checkpoint: training NLL (clean and corrupted answers) vs held-out NLL."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._style import OKABE_ITO, figure_and_axes, require_columns

__all__ = ["plot_fit"]


_LINES = (  # column, label, colour, line style
    ("train_clean", "training, clean answers", OKABE_ITO[0], "-"),
    ("train_noisy", "training, corrupted answers", OKABE_ITO[5], "--"),
    ("held_out", "held-out", OKABE_ITO[2], ":"),
)


def plot_fit(fit: pd.DataFrame, *, ax=None) -> Figure:
    """NLL per response token at each reference checkpoint, from :func:`sftmix.analysis.fit.fit_table`.

    The shaded band is the generalisation gap (held-out minus clean training NLL); the
    title gives the ratio held-out / clean training NLL at the first and last checkpoint.
    A falling corrupted-answer curve means the model memorises the wrong answers.
    """
    require_columns(fit, ["step", "train_clean", "held_out"], "plot_fit")
    if fit.empty:
        raise ValueError("plot_fit: the fit table has no rows")
    fig, ax = figure_and_axes(ax, (6.4, 4.2))
    fit = fit.sort_values("step")
    steps = fit["step"].to_numpy(dtype=float)
    for column, label, colour, style in _LINES:
        if column in fit and np.isfinite(fit[column].to_numpy(dtype=float)).any():
            ax.plot(steps, fit[column], color=colour, linestyle=style, marker="o", markersize=5, linewidth=1.8,
                    label=label)
    ax.fill_between(steps, fit["train_clean"], fit["held_out"], color=OKABE_ITO[2], alpha=0.12,
                    label="gap (held-out − clean training)")
    first, last = fit.iloc[0], fit.iloc[-1]
    ax.set_title("Reference (NTP) run: training vs held-out NLL\n"
                 f"held-out / clean-training NLL: {first['ratio']:.1f}× at step {int(first['step'])}, "
                 f"{last['ratio']:.1f}× at step {int(last['step'])}", fontsize=10)
    ax.set_xlabel("training step (reference checkpoint)")
    ax.set_ylabel("NLL per response token (nats)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    return fig
