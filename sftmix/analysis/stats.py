"""Statistics over seeds: mean and spread, and the paired per-seed difference with a 95% t-interval."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_std", "paired_difference"]

# Two-sided 95% t quantiles for n-1 degrees of freedom (n = 2..10); normal beyond.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def paired_difference(a, b, *, higher_is_better: bool = True) -> dict:
    """``b - a`` per seed with mean, std, 95% t-interval and a verdict."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    n = len(d)
    mean, std = mean_std(d)
    half = _T95.get(n - 1, 1.96) * std / math.sqrt(n) if n > 1 else float("inf")
    lo, hi = mean - half, mean + half
    if n < 2 or lo <= 0 <= hi:
        verdict = "no clear difference"
    else:
        better = (mean > 0) == higher_is_better
        verdict = "SFTMix better" if better else "NTP better"
    return {"mean": mean, "std": std, "ci95": [lo, hi], "n": n, "verdict": verdict, "per_seed": d.tolist()}
