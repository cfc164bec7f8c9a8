"""What every figure of :mod:`sftmix.viz.plots` shares: colours, axis labels, figure creation,
column checks, and :func:`save_figure` (the one function of the package that writes).

Colours: ``viridis`` for continuous values and the Okabe-Ito palette for categories,
both readable with the common colour-vision deficiencies.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ...io import atomic_write
from ...recipe import SUMMARIES

__all__ = ["CMAP", "MARKERS", "OKABE_ITO", "SPLIT_COLORS", "axis_label", "figure_and_axes", "marker_cycle",
           "new_figure", "palette", "require_columns", "save_figure"]


#: Okabe & Ito (2008) colour-blind-safe palette; yellow and black come last because
#: yellow is faint on white and black reads as "baseline".
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
             "#F0E442", "#000000"]
#: Colours of the two halves of a split; kept fixed across every figure.
SPLIT_COLORS = {"confident": "#0072B2", "unconfident": "#D55E00", "not in split": "#999999"}
CMAP = "viridis"


def axis_label(column: str) -> str:
    """The label of a summary of :data:`sftmix.recipe.SUMMARIES`; any other column's name, spaced."""
    if column in SUMMARIES and SUMMARIES[column].label:
        return SUMMARIES[column].label
    return column.replace("_", " ")


# --------------------------------------------------------------------------- helpers
def new_figure(figsize: tuple[float, float]) -> Figure:
    # Created via pyplot so a notebook's inline backend is active, then closed at once:
    # no figure stays registered in pyplot and Jupyter displays only the returned one.
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{what} is missing column(s) {missing}; it has {list(df.columns)}")


def palette(n: int) -> list:
    if n <= len(OKABE_ITO):
        return OKABE_ITO[:n]
    # Many categories (e.g. 15 tasks): no palette keeps them all apart for every reader.
    # tab10's ten strong colours, then tab20's light partners; marker_cycle adds shapes.
    strong = [plt.get_cmap("tab20")(2 * i) for i in range(10)]
    light = [plt.get_cmap("tab20")(2 * i + 1) for i in range(10)]
    return [(strong + light)[i % 20] for i in range(n)]


#: Marker shapes for categorical scatters with more groups than OKABE_ITO has colours.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def marker_cycle(n: int) -> list[str]:
    """One marker per group: all circles up to 8 groups, else shapes cycled so that groups
    with similar colours (tab20's light partners come 10 apart) get different shapes."""
    if n <= len(OKABE_ITO):
        return ["o"] * n
    return [MARKERS[(i + i // 10) % len(MARKERS)] for i in range(n)]


# ---------------------------------------------------------------------------- saving
def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as PNG and PDF next to each other; returns the written paths.

    ``path`` may end in ``.png``/``.pdf`` or have no suffix; parent folders are made.
    The PDF carries no creation date, so regenerating an unchanged figure gives an
    identical file.
    """
    path = Path(path)
    if path.suffix.lower() in (".png", ".pdf"):
        path = path.with_suffix("")
    png, pdf = path.with_name(path.name + ".png"), path.with_name(path.name + ".pdf")
    atomic_write(png, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    atomic_write(pdf, lambda tmp: fig.savefig(tmp, format="pdf", metadata={"CreationDate": None}))
    return [png, pdf]
