"""Marks shared by the figures that draw one mark per example (map, projections, histograms):
colour groups, the continuous colour scale and its colour bar, the corrupted-answer overlay,
subsampling and histogram bins.

Continuous colours: ``viridis`` on a linear scale clipped to the 2nd-98th percentile
(correctness on [0, 1]), or, with ``scale="quantile"``, a diverging scale in deciles so that
each colour holds a tenth of the examples; given a split on the same column, the scale turns
from red to blue at the split threshold and the colour bar marks it. Categorical colours come
from :mod:`sftmix.viz.plots._style`; all groups are drawn in one random order, so no group is
painted over the others.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.lines import Line2D

from ...recipe import SUMMARIES
from ._style import CMAP, SPLIT_COLORS, marker_cycle, palette, require_columns

__all__ = ["NOISY_COLOR", "NOISY_LABEL", "QuantileNorm", "category_groups", "color_groups", "colorbar", "hist_bins",
           "is_continuous", "mark_noisy", "marker_size", "quantile_norm", "scatter_by", "split_groups", "subsample"]


#: Label of the corrupted-answer overlay (the built-in suite's ``noisy`` flag).
NOISY_LABEL = "corrupted answer"
NOISY_COLOR = "#000000"


def is_continuous(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    return pd.api.types.is_float_dtype(values) or values.nunique() > 12


def split_groups(df: pd.DataFrame, split: Mapping | None) -> list[tuple[str, np.ndarray, str]]:
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


def category_groups(values: pd.Series, name: str, labels: Mapping | None = None
                    ) -> list[tuple[str, np.ndarray, str]]:
    """``[(label, mask, colour), ...]`` per category; ``labels`` renames categories (e.g.
    ``{False: "clean", True: "corrupted"}``)."""
    if pd.api.types.is_bool_dtype(values):
        cats, names = [False, True], [f"not {name}", name]
    else:
        cats = sorted(values.dropna().unique(), key=str)
        names = [str(c) for c in cats]
    if labels:
        names = [str(labels.get(c, n)) for c, n in zip(cats, names)]
    groups = []
    for cat, lab, colour in zip(cats, names, palette(len(cats))):
        mask = (values == cat).to_numpy()
        if mask.any():
            groups.append((f"{lab} (n={mask.sum():,})", mask, colour))
    return groups


def color_groups(df, color, split):
    """None for a continuous colour column, else [(label, mask, colour), ...]."""
    if color == "split":
        return split_groups(df, split)
    require_columns(df, [color], "the table")
    return None if is_continuous(df[color]) else category_groups(df[color], color)


def marker_size(n: int) -> float:
    return 18.0 if n <= 1000 else 6.0 if n <= 10000 else 2.0


def colorbar(fig, mappable, *, label, cax=None, ax=None):
    values = np.asarray(mappable.get_array(), dtype=float)
    norm = mappable.norm
    low = np.nanmin(values) < norm.vmin
    high = np.nanmax(values) > norm.vmax
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (low, high), "neither")  # arrows show the colour scale was clipped
    # A separate, opaque mappable: the bar keeps full colours when the dots are translucent.
    opaque = ScalarMappable(norm=norm, cmap=mappable.get_cmap())
    kwargs = {}
    if isinstance(norm, BoundaryNorm):  # quantile bins: equal room per bin, ticks at the bin edges
        kwargs = dict(spacing="uniform", ticks=norm.boundaries)
        extend = "neither"
    cbar = fig.colorbar(opaque, cax=cax, ax=None if cax is not None else ax, extend=extend, **kwargs)
    if isinstance(norm, BoundaryNorm):
        cbar.set_ticklabels([f"{b:.3g}".replace("-", "\u2212") for b in norm.boundaries])
        threshold = norm.threshold if isinstance(norm, QuantileNorm) else None
        if threshold is not None:
            cbar.ax.axhline(threshold, color="black", linewidth=2.2)
            cbar.ax.annotate("split", xy=(0, threshold), xycoords=("axes fraction", "data"), xytext=(-3, 0),
                             textcoords="offset points", ha="right", va="center", fontsize=7, rotation=90)
    cbar.set_label(label)
    return cbar


class QuantileNorm(BoundaryNorm):
    """A :class:`BoundaryNorm` over quantile edges that remembers the split threshold among them."""

    def __init__(self, boundaries, ncolors, threshold: float | None = None):
        super().__init__(boundaries, ncolors)
        self.threshold = None if threshold is None else float(threshold)


def quantile_norm(values: np.ndarray, threshold: float | None = None, n_bins: int = 10):
    """A :class:`QuantileNorm` over deciles of ``values`` and its diverging colour map.

    With ``threshold`` (the split threshold on this column) the decile edge nearest it is
    replaced by the threshold itself, and the colours turn from red (below) to blue (above)
    there: the two halves of the split look different; :func:`colorbar` marks it.
    """
    finite = values[np.isfinite(values)]
    edges = np.quantile(finite, np.linspace(0, 1, n_bins + 1))
    if threshold is not None and edges[0] < threshold < edges[-1]:
        edges[1 + np.argmin(np.abs(edges[1:-1] - threshold))] = threshold
    edges = np.unique(edges)
    if len(edges) < 3:
        edges = np.linspace(finite.min(), finite.max() + 1e-12, 3)
    n = len(edges) - 1
    k_low = int(np.searchsorted(edges, threshold)) if threshold is not None else n // 2
    k_low = min(max(k_low, 1), n - 1)
    # red shades for the bins below the threshold, blue ones above (RdBu's two ends)
    # (no near-white shades next to the threshold: pale dots vanish on a white background)
    reds = [_rdbu(0.02 + 0.3 * i / max(k_low - 1, 1)) for i in range(k_low)]
    blues = [_rdbu(0.68 + 0.3 * i / max(n - k_low - 1, 1)) for i in range(n - k_low)]
    cmap = ListedColormap(reds + blues)
    return QuantileNorm(edges, n, threshold if threshold is not None and threshold in edges else None), cmap


def _rdbu(x: float):
    import matplotlib

    return matplotlib.colormaps["RdBu"](x)


def scatter_by(ax, df, x, y, color, split, rng, *, scale: str = "linear", threshold: float | None = None):
    """Scatter coloured by a column; returns (mappable or None, groups or None).

    Categorical groups are drawn in one collection, in a random order, when every group is
    a circle (at most 8 groups); with more groups each has its own marker shape and collection.
    """
    n = len(df)
    size, alpha = marker_size(n), (0.8 if n <= 1000 else 0.5)
    groups = color_groups(df, color, split)
    order = rng.permutation(n)  # random drawing order: no region is systematically painted last
    if groups is None:
        values = df[color].to_numpy(dtype=float)[order]
        if scale == "quantile":
            norm, cmap = quantile_norm(values, threshold)
            kwargs = dict(norm=norm, cmap=cmap)
        else:
            fixed = SUMMARIES[color].colour_range if color in SUMMARIES else None
            if fixed is not None:
                lims = fixed
            else:
                # Perplexity-based confidence has a long tail that would paint almost every
                # point one colour; clip the colour scale to the 2nd-98th percentile.
                lims = tuple(np.nanpercentile(values, [2, 98]))
                if lims[0] == lims[1]:
                    lims = (np.nanmin(values), np.nanmax(values))
            kwargs = dict(cmap=CMAP, vmin=lims[0], vmax=lims[1])
        sc = ax.scatter(df[x].to_numpy()[order], df[y].to_numpy()[order], c=values, s=size, alpha=alpha,
                        linewidths=0, rasterized=n > 5000, **kwargs)
        return sc, None
    markers = marker_cycle(len(groups))
    if all(m == "o" for m in markers):
        colours = np.empty(n, dtype=object)
        for _, mask, colour in groups:
            colours[mask] = [colour] * int(mask.sum())
        ax.scatter(df[x].to_numpy()[order], df[y].to_numpy()[order], c=list(colours[order]), s=size, alpha=alpha,
                   linewidths=0, rasterized=n > 5000)
        for label, _, colour in groups:  # legend entries (the points are one collection)
            ax.add_line(Line2D([], [], linestyle="", marker="o", color=colour, alpha=alpha, label=label))
        return None, groups
    # Past the 8 Okabe-Ito colours no palette keeps every group apart: a marker shape per
    # group as well makes each one identifiable from the legend.
    for (label, mask, colour), marker in zip(groups, markers):
        ax.scatter(df[x].to_numpy()[mask], df[y].to_numpy()[mask], color=colour, s=size * (1.4 if marker != "o" else 1),
                   alpha=alpha, linewidths=0, label=label, marker=marker, rasterized=n > 5000)
    return None, groups


def mark_noisy(ax, df, x, y, *, flag: str = "noisy"):
    """Overlay the corrupted answers (``df[flag]``) as small black crosses; returns the collection or None."""
    if flag not in df.columns:
        return None
    mask = df[flag].to_numpy(dtype=bool)
    if not mask.any():
        return None
    size = max(marker_size(len(df)) * 1.2, 8.0)
    return ax.scatter(df[x].to_numpy()[mask], df[y].to_numpy()[mask], marker="x", s=size, color=NOISY_COLOR,
                      linewidths=0.6, alpha=0.75, zorder=4, label=f"{NOISY_LABEL} (n={mask.sum():,})",
                      rasterized=len(df) > 5000)


def subsample(df, max_points, seed):
    if max_points is None or len(df) <= max_points:
        return df, ""
    keep = np.sort(np.random.default_rng(seed).choice(len(df), max_points, replace=False))
    return df.iloc[keep], f"showing a random {max_points:,} of {len(df):,} examples"


def hist_bins(values: np.ndarray, max_bins: int = 60) -> np.ndarray:
    values = values[np.isfinite(values)]
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) > max_bins + 1:
        edges = np.linspace(values.min(), values.max(), max_bins + 1)
    return edges
