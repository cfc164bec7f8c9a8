"""Figures for the paper's claims measured on our toy: the role of Mixup, the spread of confidence."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ._style import OKABE_ITO, new_figure, require_columns


def plot_paper_claims(role: pd.DataFrame, spread: pd.DataFrame) -> Figure:
    """Left: held-out exact match per loss variant (one dot per seed, mean as a bar).
    Right: std of per-example confidence under NTP and SFTMix, one line per seed."""
    require_columns(role, ["variant", "seed", "exact_match"], "the role-of-Mixup table")
    require_columns(spread, ["method", "seed", "confidence_std"], "the confidence-spread table")
    fig = new_figure((10.0, 3.8))
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1.0])
    order = list(dict.fromkeys(role["variant"]))
    sns.barplot(role, x="exact_match", y="variant", order=order, ax=left, color="#cfd8e3", errorbar=None)
    sns.stripplot(role, x="exact_match", y="variant", order=order, ax=left, color=OKABE_ITO[0], size=5,
                  jitter=0.15)
    left.set_xlabel("held-out exact match (dots: seeds; bar: mean)")
    left.set_ylabel("")
    left.set_title("(a) role of Mixup", fontsize=10)
    lo = role["exact_match"].min()
    left.set_xlim(max(0.0, lo - 0.1), min(1.0, role["exact_match"].max() + 0.05))
    wide = spread.pivot(index="seed", columns="method", values="confidence_std")
    for seed, row in wide.iterrows():
        right.plot([0, 1], [row.get("ntp"), row.get("sftmix")], marker="o", color="#777777", lw=1)
    right.set_xticks([0, 1], ["NTP", "SFTMix"])
    right.set_xlim(-0.4, 1.4)
    right.set_ylabel("std over training examples of\nconfidence (−perplexity)")
    right.set_title("(b) spread of confidence after training\n(one line per seed)", fontsize=10)
    return fig
