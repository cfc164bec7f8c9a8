"""The real-model report's pieces on literal inputs: the SFTMix - NTP table, table cells and the
toy's AUROC read from its results file."""

import pandas as pd
import pytest

from sftmix.pipeline.real_report import _short, _toy_auroc, comparison_table


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


def test_toy_auroc_is_read_from_the_sentence_of_the_toy_results_file(tmp_path):
    results = tmp_path / "demo_results.md"
    results.write_text("# Demo\n\nLabel noise: the reference run's confidence flags them with AUROC 0.85 "
                       "(0.5 = chance, 1.0 = perfect). A later AUROC 0.99 is not read.\n")
    assert _toy_auroc(results) == 0.85
    results.write_text("noise AUROC 0.93.\n")                 # the sentence's full stop is not part of it
    assert _toy_auroc(results) == 0.93
    results.write_text("no such number here\n")
    assert _toy_auroc(results) is None
    assert _toy_auroc(tmp_path / "absent.md") is None
