"""The real-model report's pieces on literal inputs: the SFTMix - NTP table and table cells."""

import pandas as pd
import pytest

from sftmix.pipeline.real_report import _short, comparison_table


def test_comparison_pairs_by_seed_and_says_when_the_interval_covers_zero():
    rows = []
    for seed, (ntp, mix) in enumerate([(2.0, 1.9), (2.1, 2.0), (2.2, 2.1)]):  # SFTMix lower by 0.1 each seed
        for method, nll in (("ntp", ntp), ("sftmix", mix)):
            rows.append({"method": method, "seed": seed, "nll": nll, "content_nll": nll,
                         "token_accuracy": 0.5 + 0.01 * seed * (method == "sftmix") - 0.01 * seed * (method == "ntp"),
                         "ece": 0.1})
    table = comparison_table(pd.DataFrame(rows)).set_index("key")
    assert table.loc["nll", "diff_mean"] == pytest.approx(-0.1)
    assert table.loc["nll", "verdict"] == "SFTMix better"          # lower NLL is better; no spread
    assert table.loc["nll", "ntp_mean"] == pytest.approx(2.1) and table.loc["nll", "seeds"] == 3
    assert table.loc["token_accuracy", "verdict"] == "no clear difference"   # +0, +0.02, +0.04: covers 0
    assert table.loc["ece", "diff_mean"] == 0.0 and table.loc["ece", "verdict"] == "no clear difference"


def test_cells_name_invisible_answers_escape_pipes_and_cut_long_text():
    assert _short("\u200b") == "(only U+200B)"
    assert _short("a | b") == "a \\| b"
    assert _short("x" * 200, 10) == "x" * 9 + "…"
    assert _short("  two\n lines ") == "two lines"
