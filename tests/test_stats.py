"""Exact statistics on literal numbers: t quantiles for any n, paired t-test, Holm, undefined cases."""

import math

import numpy as np
import pytest
from scipy import stats

from sftmix.analysis.results import results_markdown
from sftmix.analysis.stats import format_interval, holm_adjust, paired_difference, t_interval, t_quantile

# Two-sided 95% Student-t quantiles t_{0.975, df} from a printed table.
TEXTBOOK = {1: 12.706, 2: 4.303, 5: 2.571, 9: 2.262, 10: 2.228, 13: 2.160, 20: 2.086, 29: 2.045}


@pytest.mark.parametrize("df, q", sorted(TEXTBOOK.items()))
def test_t_quantile_matches_the_table(df, q):
    assert t_quantile(df) == pytest.approx(q, abs=5e-4)


def test_t_interval_on_literal_values():
    # mean 2, sd 1, n 3: half width t_{0.975, 2} / sqrt(3) = 4.3027 / 1.7321 = 2.4841
    mean, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - 2.48414, 2.0 + 2.48414), abs=1e-5)
    mean, lo, hi = t_interval([0.7])  # one value: no interval
    assert mean == 0.7 and math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("n", range(2, 31))
def test_interval_half_width_is_exact_for_every_n(n):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(size=n) + 0.1
    d = b - a
    out = paired_difference(a, b)
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    assert out["ci95"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-12)
    assert out["p_value"] == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-9)
    assert (out["p_value"] < 0.05) == (not out["ci95"][0] <= 0 <= out["ci95"][1])


def test_fourteen_seeds_interval_covers_zero():
    # With 1.96 instead of t_{0.975,13} = 2.160 this interval excluded zero.
    d = np.array([0.9, -0.3, 0.6, 0.2, 0.8, -0.4, 0.5, 0.1, 0.7, -0.2, 0.6, 0.0, 0.4, -0.5]) + 0.013
    out = paired_difference(np.zeros(14), d)
    mean, se = d.mean(), d.std(ddof=1) / math.sqrt(14)
    assert mean - 1.96 * se > 0 and mean - 2.160 * se < 0
    assert out["verdict"] == "no clear difference" and out["ci95"][0] < 0


def test_literal_paired_t_test():
    # d = [1, 2, 3]: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641, df 2 -> p = 0.07418
    out = paired_difference([0, 0, 0], [1, 2, 3])
    assert out["mean"] == 2 and out["std"] == 1
    assert out["ci95"] == pytest.approx([2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)], rel=1e-6)
    assert out["p_value"] == pytest.approx(0.07418, abs=1e-5)
    assert out["verdict"] == "no clear difference"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("higher", [True, False])
def test_non_finite_difference_is_undefined(bad, higher):
    for a, b in (([0.1, bad, 0.3], [0.5, 0.6, 0.7]), ([0.1, 0.2, 0.3], [0.5, bad, 0.7])):
        out = paired_difference(a, b, higher_is_better=higher)
        assert out["verdict"] == "undefined" and out["ci95"] is None and out["p_value"] is None


def test_one_seed_has_no_interval():
    out = paired_difference([0.5], [0.9])
    assert out["ci95"] is None and out["p_value"] is None and out["verdict"] == "one seed: no interval"
    assert format_interval(out) == "+0.400 (one seed: no interval)"
    assert "inf" not in format_interval(out)


def test_results_markdown_says_one_seed_and_undefined():
    summary = {m: {"exact_match": {"mean": 0.5, "std": 0.0}, "nll": {"mean": 1.0, "std": 0.0}}
               for m in ("ntp", "sftmix")}
    comparison = {"exact_match": paired_difference([0.5], [0.6]),
                  "nll": paired_difference([1.0], [float("nan")], higher_is_better=False)}
    text = results_markdown({"name": "t", "seeds": [0], "summary": summary, "comparison": comparison,
                             "versions": {}})
    assert "+0.100 (one seed: no interval) | one seed: no interval" in text
    assert "| undefined | undefined |" in text
    assert "inf" not in text


def test_holm_literal():
    # sorted 0.01, 0.02, 0.03, 0.04 (m = 4): x4, x3, x2, x1 = 0.04, 0.06, 0.06, 0.04 -> monotone 0.04, 0.06, 0.06, 0.06
    assert holm_adjust([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm_adjust([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm_adjust([0.6, 0.7]) == pytest.approx([1.0, 1.0])   # capped at 1
    out = holm_adjust([0.01, float("nan"), 0.04])                  # NaN does not count towards m
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    with pytest.raises(ValueError):
        holm_adjust([1.5])
