"""AUROC of -confidence for the noise flag, on literal numbers."""

import math

import pandas as pd
import pytest

from sftmix.analysis.noise import auroc, noise_auroc


def test_auroc_literal_cases():
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    # One positive (0.5) against negatives 0.1, 0.5 (tie: one half), 0.9: (1 + 0.5 + 0) / 3.
    assert auroc([0.5, 0.1, 0.5, 0.9], [True, False, False, False]) == pytest.approx(0.5)
    # 2 positives x 3 negatives; pairs won: 0.7 beats 0.2, 0.6 (2); 0.4 beats 0.2 (1) -> 3 / 6.
    assert auroc([0.7, 0.4, 0.2, 0.6, 0.8], [True, True, False, False, False]) == pytest.approx(0.5)
    assert math.isnan(auroc([0.1, 0.2], [False, False]))


def test_noise_auroc_uses_negative_confidence():
    table = pd.DataFrame({"confidence": [-1.1, -1.2, -5.0, -1.0, -3.0],
                          "noisy": [False, False, True, False, True]})
    assert noise_auroc(table) == 1.0  # noisy rows have the lowest confidence
    table.loc[2, "confidence"] = -1.05  # now one noisy row sits between two clean ones
    assert noise_auroc(table) == pytest.approx((1 / 3 + 1) / 2)  # 1.05 beats only 1.0
    assert math.isnan(noise_auroc(table.drop(columns="noisy")))


def test_auroc_checks_shapes():
    with pytest.raises(ValueError, match="one shape"):
        auroc([0.1, 0.2], [True])
