"""The paper's claims measured on our toy, beside the paper's own numbers (never on one axis).

(a) our role-of-Mixup ablation: exact match per loss variant, bars from zero, the mean with its
95% t-interval over seeds and every seed as a dot; (b) the paper's role-of-Mixup numbers
(Llama-3.1-8B on Alpaca-52K) relative to NTP only, one bar per benchmark, from zero; (c) the
spread of per-example confidence after training, as the ratio SFTMix / NTP per seed, with its
interval and the paper's "about 7% lower" drawn as a reference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...analysis.paper import PAPER_RESULTS
from ...analysis.stats import t_interval
from ._style import OKABE_ITO, new_figure, require_columns

__all__ = ["PAPER_ROLE", "PAPER_SPREAD_RATIO", "plot_paper_claims"]


#: The paper's role-of-Mixup table (Xiao et al., arXiv:2410.05248).
PAPER_ROLE = "role of Mixup (Llama-3.1-8B, Alpaca-52K)"
#: The paper reports about 7% lower standard deviation of confidence under SFTMix.
PAPER_SPREAD_RATIO = 0.93


def _mean_ci(values) -> tuple[float, float, float]:
    return t_interval(values)


def plot_paper_claims(role: pd.DataFrame, spread: pd.DataFrame, *, paper: dict | None = None) -> Figure:
    """Three panels (see the module docs); ``paper`` defaults to the paper's role-of-Mixup table."""
    require_columns(role, ["variant", "seed", "exact_match"], "the role-of-Mixup table")
    require_columns(spread, ["method", "seed", "confidence_std"], "the confidence-spread table")
    paper = paper or PAPER_RESULTS[PAPER_ROLE]
    fig = new_figure((14.0, 4.3))
    ours, theirs, sp = fig.subplots(1, 3, width_ratios=[1.5, 1.2, 1.0])
    order = list(dict.fromkeys(role["variant"]))
    y = np.arange(len(order))[::-1]
    ntp_mean = float(role[role["variant"] == order[0]]["exact_match"].mean())
    for yi, variant in zip(y, order):
        values = role.loc[role["variant"] == variant, "exact_match"].to_numpy(dtype=float)
        mean, lo, hi = _mean_ci(values)
        ours.barh(yi, mean, color="#cfd8e3", height=0.6)
        if np.isfinite(lo):
            ours.errorbar(mean, yi, xerr=[[mean - lo], [hi - mean]], fmt="none", ecolor="black", capsize=4, lw=1.3)
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(values))
        ours.scatter(values, yi + jitter, color=OKABE_ITO[0], s=14, zorder=3)
        ours.annotate(f"{mean:.3f} ({mean / ntp_mean:.0%} of NTP)", xy=(0.01, yi + 0.33),
                      xycoords=("axes fraction", "data"), fontsize=7, va="center")
    ours.set_yticks(y, order, fontsize=8)
    ours.set_xlim(0, min(1.0, float(role["exact_match"].max()) * 1.15))
    seeds = role["seed"].nunique()
    ours.set_xlabel(f"held-out exact match (bar: mean; line: 95% t-interval; dots: {seeds} seeds)", fontsize=8)
    ours.set_title("(a) ours: role of Mixup on the toy suite", fontsize=10)

    metrics = paper["metrics"]
    rows = list(paper["rows"].items())
    base = rows[0][1]
    y_paper = np.arange(len(rows))[::-1]
    height = 0.8 / len(metrics)
    for m, (metric, colour) in enumerate(zip(metrics, (OKABE_ITO[1], OKABE_ITO[2], OKABE_ITO[3]))):
        for yi, ((label, _), values) in zip(y_paper, rows):
            rel = values[m] / base[m]
            pos = yi + (len(metrics) / 2 - m - 0.5) * height
            theirs.barh(pos, rel, height=height * 0.95, color=colour, label=metric if yi == y_paper[0] else None)
            theirs.annotate(f"{values[m]:g}", xy=(rel, pos), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=7)
    theirs.axvline(1.0, color="black", linewidth=1, linestyle=":")
    theirs.set_yticks(y_paper, [label for (label, _), _ in rows], fontsize=8)
    theirs.set_xlim(0, 1.45)
    theirs.set_xlabel("score / NTP only's score (printed: the paper's score)", fontsize=8)
    theirs.set_title("(b) the paper: Llama-3.1-8B on Alpaca-52K\n(one run each)", fontsize=10)
    theirs.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=2)

    wide = {c: spread.pivot(index="seed", columns="method", values=c).dropna()
            for c in ("confidence_std", "log_ppl_std") if c in spread}
    names = {"confidence_std": "std of confidence\n(−perplexity)", "log_ppl_std": "std of\nlog-perplexity"}
    ys = np.arange(len(wide))[::-1]
    ratios_all = []
    for yi, (column, table) in zip(ys, wide.items()):
        ratios = (table["sftmix"] / table["ntp"]).to_numpy(dtype=float)
        ratios_all.extend(ratios)
        mean, lo, hi = _mean_ci(ratios)
        sp.scatter(ratios, np.full(len(ratios), yi) + np.random.default_rng(1).uniform(-0.12, 0.12, len(ratios)),
                   color="0.45", s=14, zorder=3, label="seeds" if yi == ys[0] else None)
        sp.plot([mean], [yi], marker="D", color=OKABE_ITO[0], markersize=7, zorder=4,
                label="mean, 95% t-interval" if yi == ys[0] else None)
        if np.isfinite(lo):
            sp.plot([lo, hi], [yi, yi], color=OKABE_ITO[0], linewidth=2, zorder=4)
        sp.annotate(f"{mean:.2f}", xy=(mean, yi), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8)
    sp.axvline(1.0, color="black", linewidth=1, label="no change")
    sp.axvline(PAPER_SPREAD_RATIO, color=OKABE_ITO[5], linestyle="--", linewidth=1.2, label="paper: ≈7% lower")
    if ratios_all:  # a linear axis: a one-seed outlier widens it, the interval says how much
        lo_x = min(min(ratios_all), PAPER_SPREAD_RATIO) - 0.05
        sp.set_xlim(max(0.0, lo_x), max(ratios_all) * 1.08)
    sp.set_yticks(ys, [names[c] for c in wide], fontsize=8)
    sp.set_ylim(-0.7, len(wide) - 0.3)
    sp.set_xlabel("std under SFTMix / std under NTP, per seed", fontsize=8)
    sp.set_title("(c) ours: spread of per-example\nconfidence after training", fontsize=10)
    sp.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.22), ncols=2)
    return fig
