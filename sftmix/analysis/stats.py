"""Statistics over seeds: mean and spread, the paired per-seed difference (exact 95% t-interval,
two-sided paired t-test) and the Holm–Bonferroni adjustment for several comparisons.

A claim needs data that support it: a non-finite difference gives the verdict
``"undefined"``, one seed gives no interval (``"one seed: no interval"``), and a
difference is called an improvement only when its 95% interval excludes zero.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _scipy_stats

__all__ = ["NO_INTERVAL", "UNDEFINED", "format_interval", "holm_adjust", "mean_std", "paired_difference",
           "t_half_width", "t_interval", "t_quantile", "wilson_interval"]

#: Verdicts that make no claim.
NO_INTERVAL = "one seed: no interval"
UNDEFINED = "undefined"


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom (exact)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(_scipy_stats.t.ppf(0.5 + level / 2, df))


def t_half_width(values, level: float = 0.95) -> float:
    """Half the width of the ``level`` t-interval of the mean of ``values`` (NaN for fewer than two)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float("nan")
    return t_quantile(len(v) - 1, level) * float(v.std(ddof=1)) / math.sqrt(len(v))


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``values`` and its ``level`` t-interval (NaN bounds for one value)."""
    mean = float(np.asarray(values, dtype=float).mean())
    half = t_half_width(values, level)
    return mean, mean - half, mean + half


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def paired_difference(a, b, *, higher_is_better: bool = True) -> dict:
    """``b - a`` per seed with mean, std, 95% t-interval, paired two-sided p-value and a verdict.

    ``ci95`` is ``[lo, hi]``, or None with one seed or a non-finite difference (NaN or inf in
    either input); ``p_value`` is None in the same cases. When every difference is equal
    the t statistic has no spread: ``p_value`` is then 0.0 for a nonzero mean, 1.0 for zero.
    """
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = len(d)
    out = {"n": n, "per_seed": d.tolist(), "ci95": None, "p_value": None}
    if n == 0 or not np.isfinite(d).all():
        mean = float(d.mean()) if n else float("nan")
        return {**out, "mean": mean, "std": float("nan"), "verdict": UNDEFINED}
    mean, std = mean_std(d)
    if n < 2:
        return {**out, "mean": mean, "std": std, "verdict": NO_INTERVAL}
    half = t_half_width(d)
    lo, hi = mean - half, mean + half
    if std == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * _scipy_stats.t.sf(abs(mean) / (std / math.sqrt(n)), n - 1))
    if lo <= 0 <= hi:
        verdict = "no clear difference"
    else:
        verdict = "SFTMix better" if (mean > 0) == higher_is_better else "NTP better"
    return {**out, "mean": mean, "std": std, "ci95": [lo, hi], "p_value": p, "verdict": verdict}


def format_interval(comparison: dict, digits: int = 3) -> str:
    """``"+0.120 [+0.010, +0.230]"``, or the mean with why there is no interval."""
    mean = comparison["mean"]
    if comparison.get("ci95") is None:
        why = UNDEFINED if comparison.get("verdict") == UNDEFINED else NO_INTERVAL
        return f"{mean:+.{digits}f} ({why})" if math.isfinite(mean) else why
    lo, hi = comparison["ci95"]
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def holm_adjust(pvalues) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    The k-th smallest of m p-values is multiplied by ``m - k + 1`` (k from 1), made
    non-decreasing along that order and capped at 1. Rejecting where the adjusted value is
    at most alpha controls the family-wise error rate at alpha. NaN stays NaN and does not
    count towards m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    if finite.size == 0:
        return out.tolist()
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out.tolist()


def wilson_interval(p, n, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` trials (e.g. exact match of one
    run over ``n`` held-out examples): the spread from the examples, not from seeds."""
    n = float(n)
    if n <= 0:
        return float("nan"), float("nan")
    z = float(_scipy_stats.norm.ppf(0.5 + level / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
