"""How well training dynamics flag label noise: the AUROC of a score for a boolean flag.

On the built-in suite a fraction of training answers is corrupted on purpose (``noisy``).
A model that has learned its world finds those answers surprising, so their confidence
(-mean perplexity over the reference checkpoints) is low. ``noise_auroc`` is the
probability that a random noisy example scores *lower* confidence than a random clean
one (ties count one half): 0.5 is chance, 1.0 separates them perfectly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["auroc", "noise_auroc", "noise_auroc_by_task"]


def auroc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels`` (higher score = positive).

    Mann-Whitney form with average ranks, so ties count one half. NaN scores are dropped.
    Returns NaN when either class is empty.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have one shape, got {scores.shape} and {labels.shape}")
    keep = np.isfinite(scores)
    scores, labels = scores[keep], labels[keep]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def noise_auroc(table: pd.DataFrame, *, metric: str = "confidence", flag: str = "noisy") -> float:
    """AUROC of ``-table[metric]`` for ``table[flag]`` (NaN when the table has no such flag)."""
    if flag not in table.columns or metric not in table.columns:
        return float("nan")
    return auroc(-table[metric].to_numpy(dtype=float), table[flag].to_numpy(dtype=bool))


def noise_auroc_by_task(table: pd.DataFrame, *, metric: str = "confidence", flag: str = "noisy",
                        by: str = "task") -> pd.DataFrame:
    """:func:`noise_auroc` within each group of ``by``: ``auroc``, ``examples``, ``noisy`` per group,
    sorted by AUROC (highest first); NaN for a group with no noisy or no clean example."""
    for column in (metric, flag, by):
        if column not in table.columns:
            raise KeyError(f"noise_auroc_by_task needs a {column!r} column")
    rows = []
    for group, part in table.groupby(by, sort=True):
        rows.append({by: group, "auroc": noise_auroc(part, metric=metric, flag=flag), "examples": len(part),
                     "noisy": int(part[flag].astype(bool).sum())})
    out = pd.DataFrame(rows).set_index(by)
    return out.sort_values("auroc", ascending=False, na_position="last", kind="stable")
