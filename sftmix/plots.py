"""Figures for SFTMix experiments.

Training-dynamics maps, confidence histograms, projections of the representation space,
training curves, ablations and results tables as bar charts.

Every ``plot_*`` function takes data and an optional ``ax`` and returns a
:class:`matplotlib.figure.Figure`. None of them changes matplotlib's global style,
writes a file or calls ``plt.show()``: :func:`save_figure` is the one function here
that writes. Figures are created through pyplot and closed at once, so a loop that
draws hundreds of them leaks nothing, and Jupyter shows each figure once, from the
returned value.

Colours: ``viridis`` for continuous values and the Okabe-Ito palette for categories,
both readable with the common colour-vision deficiencies.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

#: Okabe & Ito (2008) colour-blind-safe palette; yellow and black come last because
#: yellow is faint on white and black reads as "baseline".
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
             "#F0E442", "#000000"]
#: Colours of the two halves of a split; kept fixed across every figure.
SPLIT_COLORS = {"confident": "#0072B2", "unconfident": "#D55E00", "not in split": "#999999"}
CMAP = "viridis"

_LABELS = {
    "confidence": "confidence (\u2212mean perplexity)",
    "variability": "variability (std of perplexity)",
    "confidence_prob": "confidence (mean geometric-mean token prob.)",
    "variability_prob": "variability (std of geometric-mean token prob.)",
    "correctness": "correctness (mean token accuracy)",
}


def _label(column: str) -> str:
    return _LABELS.get(column, column.replace("_", " "))


# --------------------------------------------------------------------------- helpers
def _new_figure(figsize: tuple[float, float]) -> Figure:
    # Created via pyplot so a notebook's inline backend is active, then closed at once:
    # no figure stays registered in pyplot and Jupyter displays only the returned one.
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _figure_and_axes(ax, figsize):
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = _new_figure(figsize)
    return fig, fig.add_subplot()


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{what} is missing column(s) {missing}; it has {list(df.columns)}")


def _palette(n: int) -> list:
    if n <= len(OKABE_ITO):
        return OKABE_ITO[:n]
    # Many categories (e.g. 15 tasks): no palette keeps them all apart for every reader;
    # tab20 at least keeps neighbours distinct (and legends name each group).
    return [plt.get_cmap("tab20")(i % 20) for i in range(n)]


def _is_continuous(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    return pd.api.types.is_float_dtype(values) or values.nunique() > 12


def _split_groups(df: pd.DataFrame, split: Mapping) -> list[tuple[str, np.ndarray, str]]:
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


def _category_groups(values: pd.Series, name: str) -> list[tuple[str, np.ndarray, str]]:
    if pd.api.types.is_bool_dtype(values):
        cats, labels = [False, True], [f"not {name}", name]
    else:
        cats = sorted(values.dropna().unique(), key=str)
        labels = [str(c) for c in cats]
    groups = []
    for cat, lab, colour in zip(cats, labels, _palette(len(cats))):
        mask = (values == cat).to_numpy()
        if mask.any():
            groups.append((f"{lab} (n={mask.sum():,})", mask, colour))
    return groups


def _color_groups(df, color, split):
    """None for a continuous colour column, else [(label, mask, colour), ...]."""
    if color == "split":
        return _split_groups(df, split)
    _require(df, [color], "the table")
    return None if _is_continuous(df[color]) else _category_groups(df[color], color)


def _colorbar(fig, mappable, *, label, cax=None, ax=None):
    values = np.asarray(mappable.get_array(), dtype=float)
    low = np.nanmin(values) < mappable.norm.vmin
    high = np.nanmax(values) > mappable.norm.vmax
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (low, high), "neither")  # arrows show the colour scale was clipped
    # A separate, opaque mappable: the bar keeps full colours when the dots are translucent.
    opaque = ScalarMappable(norm=mappable.norm, cmap=mappable.get_cmap())
    cbar = fig.colorbar(opaque, cax=cax, ax=None if cax is not None else ax, extend=extend)
    cbar.set_label(label)
    return cbar


def _marker_size(n: int) -> float:
    return 18.0 if n <= 1000 else 6.0 if n <= 10000 else 2.0


def _scatter(ax, df, x, y, color, split, rng):
    """Scatter coloured by a column; returns (mappable or None, groups or None)."""
    n = len(df)
    size, alpha = _marker_size(n), (0.8 if n <= 1000 else 0.5)
    groups = _color_groups(df, color, split)
    if groups is None:
        # Random drawing order so no region is systematically painted last.
        order = rng.permutation(n)
        values = df[color].to_numpy(dtype=float)[order]
        if color == "correctness":
            lims = (0.0, 1.0)
        else:
            # Perplexity-based confidence has a long tail that would paint almost every
            # point one colour; clip the colour scale to the 2nd-98th percentile.
            lims = tuple(np.nanpercentile(values, [2, 98]))
            if lims[0] == lims[1]:
                lims = (np.nanmin(values), np.nanmax(values))
        sc = ax.scatter(df[x].to_numpy()[order], df[y].to_numpy()[order], c=values,
                        cmap=CMAP, vmin=lims[0], vmax=lims[1], s=size, alpha=alpha,
                        linewidths=0, rasterized=n > 5000)
        return sc, None
    for label, mask, colour in groups:
        ax.scatter(df[x].to_numpy()[mask], df[y].to_numpy()[mask], color=colour, s=size,
                   alpha=alpha, linewidths=0, label=label, rasterized=n > 5000)
    return None, groups


def _subsample(df, max_points, seed):
    if max_points is None or len(df) <= max_points:
        return df, ""
    keep = np.sort(np.random.default_rng(seed).choice(len(df), max_points, replace=False))
    return df.iloc[keep], f"showing a random {max_points:,} of {len(df):,} examples"


def _hist_bins(values: np.ndarray, max_bins: int = 60) -> np.ndarray:
    values = values[np.isfinite(values)]
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) > max_bins + 1:
        edges = np.linspace(values.min(), values.max(), max_bins + 1)
    return edges


# --------------------------------------------------------------------- dynamics map
def plot_dynamics_map(table: pd.DataFrame, *, split: Mapping | None = None,
                      color: str = "correctness", scale: str = "prob", ax=None,
                      max_points: int | None = 20000, seed: int = 0) -> Figure:
    """Dataset-Cartography map: variability (x) against confidence (y), one dot per example.

    Parameters
    ----------
    table : dynamics table, one row per example.
    split : split dict; needed for ``color="split"``.
    color : ``"correctness"`` (continuous, colour bar), ``"split"``, ``"task"``,
        ``"noisy"`` or any other column (numeric floats are continuous).
    scale : ``"prob"`` uses ``variability_prob``/``confidence_prob`` (bounded, the
        Cartography convention); ``"perplexity"`` uses the paper's
        ``variability``/``confidence`` (minus mean perplexity).
    ax : draw into this axes (no marginal histograms); else a new figure with
        marginal histograms on top and right.
    max_points : seeded random subsample above this many rows (stated in the title).
    """
    if scale not in ("prob", "perplexity"):
        raise ValueError(f'scale must be "prob" or "perplexity", got {scale!r}')
    x, y = ("variability_prob", "confidence_prob") if scale == "prob" else \
        ("variability", "confidence")
    _require(table, [x, y], "the dynamics table")
    data, note = _subsample(table, max_points, seed)
    rng = np.random.default_rng(seed)

    if ax is None:
        fig = _new_figure((7.4, 6.6))
        gs = fig.add_gridspec(2, 3, width_ratios=[4, 1, 0.18], height_ratios=[1, 4])
        ax = fig.add_subplot(gs[1, 0])
        ax_top = fig.add_subplot(gs[0, 0], sharex=ax)
        ax_right = fig.add_subplot(gs[1, 1], sharey=ax)
        corner = fig.add_subplot(gs[0, 1:])
        corner.axis("off")
    else:
        fig, ax_top, ax_right, corner = ax.get_figure(root=True), None, None, None

    mappable, groups = _scatter(ax, data, x, y, color, split, rng)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    box = dict(boxstyle="round,pad=0.25", facecolor="white", alpha=0.75, linewidth=0)
    for text, pos, ha, va in (("easy-to-learn", (0.02, 0.98), "left", "top"),
                              ("hard-to-learn", (0.02, 0.02), "left", "bottom"),
                              ("ambiguous", (0.98, 0.5), "right", "center")):
        ax.text(*pos, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
                style="italic", bbox=box, zorder=5)

    if ax_top is not None:
        masks = [(m, c) for _, m, c in groups] if groups else [(slice(None), "0.45")]
        for col, hax, orient in ((x, ax_top, "vertical"), (y, ax_right, "horizontal")):
            bins = _hist_bins(data[col].to_numpy(dtype=float))
            for mask, colour in masks:
                hax.hist(data[col].to_numpy()[mask], bins=bins, histtype="step",
                         color=colour, orientation=orient, linewidth=1.2)
            hax.spines[["top", "right"]].set_visible(False)
        ax_top.tick_params(labelbottom=False)
        ax_right.tick_params(labelleft=False)
        ax_top.set_ylabel("count")
        ax_right.set_xlabel("count")

    if mappable is not None:
        cax = fig.add_subplot(gs[1, 2]) if corner is not None else None
        _colorbar(fig, mappable, label=_label(color), cax=cax, ax=ax)
    elif corner is not None:
        handles, labels = ax.get_legend_handles_labels()
        title = "split" if color == "split" else color
        corner.legend(handles, labels, loc="center", title=title, frameon=False,
                      markerscale=max(1.0, 6 / math.sqrt(_marker_size(len(data)))))
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title="split" if color == "split" else color)

    title = "Training-dynamics map" + (f"\n({note})" if note else "")
    (fig.suptitle(title) if ax_top is not None else ax.set_title(title))
    return fig


# ---------------------------------------------------------------------- histograms
def _threshold_line(ax, split, metric):
    if split is None or "threshold" not in split:
        return
    if split.get("metric", metric) != metric:
        return  # a threshold on another metric would mislead on this axis
    t = float(split["threshold"])
    ax.axvline(t, color="black", linestyle="--", linewidth=1.2)
    lo, hi = ax.get_xlim()
    right_half = t > lo + 0.6 * (hi - lo)
    label = f"threshold = {t:.3g}".replace("-", "\u2212")
    ax.annotate(label, xy=(t, 0.97), xycoords=ax.get_xaxis_transform(),
                xytext=(-4 if right_half else 4, 0), textcoords="offset points",
                ha="right" if right_half else "left", va="top", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.2", facecolor="white", alpha=0.8,
                          linewidth=0))


def plot_confidence_hist(table: pd.DataFrame, *, split: Mapping | None = None,
                         metric: str = "confidence", by: str | None = None,
                         ax=None) -> Figure:
    """Histogram of a dynamics metric with the split threshold marked.

    ``by`` (e.g. ``"task"`` or ``"noisy"``) draws one histogram per group: overlaid
    step histograms on shared bins for up to three groups or when ``ax`` is given,
    otherwise a grid of small multiples with shared axes (easier to read than many
    overlaid outlines). The threshold line is drawn only when the split was made on
    ``metric``.
    """
    _require(table, [metric] + ([by] if by else []), "the dynamics table")
    values = table[metric].to_numpy(dtype=float)
    bins = _hist_bins(values)
    groups = _category_groups(table[by], by) if by else None

    if groups and ax is None and len(groups) > 3:
        ncols = math.ceil(math.sqrt(len(groups)))
        nrows = math.ceil(len(groups) / ncols)
        fig = _new_figure((3.2 * ncols + 0.6, 2.4 * nrows + 0.6))
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for a, (label, mask, colour) in zip(axes, groups):
            a.hist(values[mask], bins=bins, color=colour, alpha=0.85)
            a.set_title(label, fontsize=10)
        axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.15)  # room for the threshold label
        for a in axes[: len(groups)]:
            _threshold_line(a, split, metric)
        for i, a in enumerate(axes[len(groups):], start=len(groups)):
            a.axis("off")
            axes[i - ncols].tick_params(labelbottom=True)  # the panel above shows the x axis
        fig.supxlabel(_label(metric))
        fig.supylabel("examples")
        fig.suptitle(f"{_label(metric)} by {by}")
        return fig

    fig, ax = _figure_and_axes(ax, (6.4, 4.0))
    if groups:
        for label, mask, colour in groups:
            ax.hist(values[mask], bins=bins, histtype="step", linewidth=1.6, color=colour,
                    label=label)
    else:
        ax.hist(values, bins=bins, color="#56B4E9", edgecolor="white", linewidth=0.4)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the threshold label and legend
    _threshold_line(ax, split, metric)
    ax.set_xlabel(_label(metric))
    ax.set_ylabel("examples")
    ax.set_title(f"Distribution of {_label(metric)}" + (f" by {by}" if by else ""))
    if groups:
        ax.legend(frameon=False, fontsize=9, loc="upper left")
    return fig


def plot_confidence_by_task(table: pd.DataFrame, *, metric: str = "confidence", ax=None,
                            max_points: int | None = 5000, seed: int = 0) -> Figure:
    """Box plot per task (sorted by median, highest on top) with the examples as dots."""
    _require(table, ["task", metric], "the dynamics table")
    medians = table.groupby("task")[metric].median().sort_values()
    tasks = list(medians.index)
    fig, ax = _figure_and_axes(ax, (6.4, 1.0 + 0.55 * len(tasks)))
    data = [table.loc[table["task"] == t, metric].to_numpy(dtype=float) for t in tasks]
    # Box above, dots below each task's line, so neither hides the other.
    ax.boxplot(data, positions=np.arange(len(tasks)) + 0.18, orientation="horizontal",
               widths=0.28, showfliers=False, patch_artist=True,
               boxprops=dict(facecolor="#56B4E9", alpha=0.6),
               medianprops=dict(color="black", linewidth=1.8))
    shown, note = _subsample(table, max_points, seed)
    rng = np.random.default_rng(seed)
    pos = shown["task"].map({t: i for i, t in enumerate(tasks)}).to_numpy(dtype=float) - 0.17
    ax.scatter(shown[metric].to_numpy(dtype=float), pos + rng.uniform(-0.14, 0.14, len(pos)),
               s=_marker_size(len(shown)), color="#0072B2", alpha=0.45, linewidths=0,
               rasterized=len(shown) > 5000, zorder=3)
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set_xlabel(_label(metric))
    ax.set_ylabel("task")
    ax.set_title(f"{_label(metric)} by task" + (f"\n({note})" if note else ""))
    return fig


# ----------------------------------------------------------------------- projection
def plot_umap_confidence(projection: pd.DataFrame, *, color: str = "confidence",
                         split: Mapping | None = None, ax=None, method: str | None = None,
                         seed: int = 0) -> Figure:
    """Projection of the representation space (``x``, ``y``) coloured by ``color``.

    ``color``: ``"confidence"`` or any float column (continuous, colour bar),
    ``"split"`` (needs ``split``), or ``"task"`` / any categorical column. Merge the
    dynamics table into the projection on ``example_id`` to colour by its columns.
    ``method`` names the projection on the axes; by default ``projection.attrs["method"]``
    (set by :mod:`sftmix.projection`; kept by parquet, dropped by ``merge``), else "UMAP".
    """
    _require(projection, ["x", "y"], "the projection")
    method = method or projection.attrs.get("method", "UMAP")
    fig, ax = _figure_and_axes(ax, (7.2, 5.2))
    mappable, _ = _scatter(ax, projection, "x", "y", color, split,
                           np.random.default_rng(seed))
    if mappable is not None:
        _colorbar(fig, mappable, label=_label(color), ax=ax)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title=color, markerscale=max(1.0, 6 / math.sqrt(_marker_size(len(projection)))))
    ax.set_xlabel(f"{method} 1")
    ax.set_ylabel(f"{method} 2")
    ax.set_xticks([])
    ax.set_yticks([])  # projection coordinates carry no units
    ax.set_title(f"{method} of the representation space, coloured by "
                 f"{'split' if color == 'split' else color}")
    return fig


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
        fig = _new_figure((11.0 if has_parts else 6.4, 4.2))
        axes = fig.subplots(1, 2 if has_parts else 1, sharex=True, squeeze=False).ravel()
    else:
        fig, axes, has_parts = ax.get_figure(root=True), [ax], False

    def curve(a, steps, vals, colour, label, style="-"):
        if smooth > 0:
            a.plot(steps, vals, color=colour, alpha=0.25, linewidth=1, linestyle=style)
            vals = _ema(vals, smooth)
        a.plot(steps, vals, color=colour, linewidth=1.6, linestyle=style, label=label)

    for (run, history), colour in zip(histories.items(), _palette(len(histories))):
        steps, loss = _series(history, "loss")
        if len(steps):
            curve(axes[0], steps, loss, colour, f"{run} train")
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
                  baseline=None, error: str = "std") -> Figure:
    """Metric against the swept value of one parameter, mean and spread over seeds.

    Numeric values go on a numeric axis (log-scaled when positive and spanning a factor
    of 20 or more); strings (e.g. pairing strategies) on a categorical axis in order of
    first appearance. ``error`` is ``"std"`` or ``"ci95"`` (t-interval). ``baseline`` is
    a number, a list of per-seed values, or ``{"mean", "std", "label"}``: drawn as a
    horizontal line with a mean ± std band.
    """
    if error not in ("std", "ci95"):
        raise ValueError('error must be "std" or "ci95"')
    _require(results, ["param", "value", metric], "the ablation results")
    rows = results[results["param"] == param]
    if rows.empty:
        raise ValueError(f"no rows for param={param!r}; have {sorted(results['param'].unique())}")
    numeric = pd.to_numeric(rows["value"], errors="coerce")
    is_numeric = bool(numeric.notna().all())
    fig, ax = _figure_and_axes(ax, (6.4, 4.2))

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
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {param}")
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- results
def plot_results(per_task: pd.DataFrame, *, metric: str = "accuracy", ax=None) -> Figure:
    """Grouped bars: one group per task plus "overall", one bar per method, mean ± std
    over seeds. "overall" averages the tasks within each seed first."""
    _require(per_task, ["method", "seed", "task", metric], "the per-task results")
    methods = list(dict.fromkeys(per_task["method"]))
    tasks = sorted(per_task["task"].unique(), key=str)
    overall = (per_task.groupby(["method", "seed"], sort=False)[metric].mean()
               .reset_index().assign(task="overall"))
    data = pd.concat([per_task[["method", "seed", "task", metric]], overall])
    data["task"] = data["task"].astype(str)
    stats = data.groupby(["task", "method"])[metric].agg(["mean", "std", "count"])
    groups = [str(t) for t in tasks] + ["overall"]

    fig, ax = _figure_and_axes(ax, (max(6.4, 1.1 * len(groups) * max(1, len(methods) / 2)), 4.2))
    width = 0.8 / len(methods)
    x = np.arange(len(groups), dtype=float)
    x[-1] += 0.4  # a gap sets "overall" apart from the tasks
    for i, (method, colour) in enumerate(zip(methods, _palette(len(methods)))):
        idx = [(g, method) for g in groups]
        m = stats["mean"].reindex(idx).to_numpy()
        s = stats["std"].reindex(idx).fillna(0.0).to_numpy()
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, m, width * 0.95, yerr=s,
               color=colour, capsize=3, label=method, error_kw=dict(linewidth=1))
    ax.axvline((x[-2] + x[-1]) / 2 if len(groups) > 1 else -0.5, color="0.7", linewidth=0.8)
    long_names = max(len(g) for g in groups) > 10 or len(groups) > 8
    ax.set_xticks(x, groups, rotation=30 if long_names else 0,
                  ha="right" if long_names else "center")
    top = float(np.nanmax(stats["mean"] + stats["std"].fillna(0)))
    ax.set_ylim(0, top * 1.2 if top > 0 else 1)
    ax.set_ylabel(metric)
    ax.set_xlabel("task")
    n = sorted(stats["count"].unique())
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}\u2013{n[-1]}"
    ax.set_title(f"{metric} per task (mean \u00b1 std over {seeds} seeds)")
    ax.legend(frameon=False, ncols=min(len(methods), 4), loc="upper center", fontsize=9)
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
    fig, ax = _figure_and_axes(ax, (6.0, 4.0))
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
    ax.set_title(f"\u03bb ~ Beta({alpha:g}, {alpha:g})")
    ax.legend(frameon=False, loc="best")
    return fig


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
    path.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = path.with_name(path.name + ".png"), path.with_name(path.name + ".pdf")
    fig.savefig(png, dpi=dpi)
    fig.savefig(pdf, metadata={"CreationDate": None})
    return [png, pdf]
