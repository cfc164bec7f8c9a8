"""The results table from fixed numbers: spread, paired differences, honest verdicts."""

import json

import pytest

from sftmix.analysis.results import build_results, paired_difference, results_markdown
from sftmix.pipeline.experiment_config import ExperimentConfig


def test_paired_difference_claims_only_outside_the_interval():
    clear = paired_difference([0.50, 0.52, 0.51], [0.60, 0.61, 0.62])
    assert clear["verdict"] == "SFTMix better" and clear["ci95"][0] > 0
    assert clear["mean"] == pytest.approx(0.1)
    noisy = paired_difference([0.50, 0.60, 0.40], [0.55, 0.50, 0.50])
    assert noisy["verdict"] == "no clear difference" and noisy["ci95"][0] < 0 < noisy["ci95"][1]
    lower_better = paired_difference([2.0, 2.1, 2.2], [1.5, 1.6, 1.7], higher_is_better=False)
    assert lower_better["verdict"] == "SFTMix better"
    worse = paired_difference([2.0, 2.1, 2.2], [2.5, 2.6, 2.7], higher_is_better=False)
    assert worse["verdict"] == "NTP better"
    assert paired_difference([0.5], [0.9])["verdict"] == "one seed: no interval"   # one seed: no claim


def test_results_table_from_fixed_evals(tmp_path):
    config = ExperimentConfig(name="fixed", runs_dir=str(tmp_path), seeds=[0, 1, 2])
    numbers = {"ntp": [0.40, 0.42, 0.44], "sftmix": [0.45, 0.47, 0.49]}
    for method, values in numbers.items():
        for seed, em in enumerate(values):
            out = tmp_path / "fixed" / method / f"seed{seed}"
            out.mkdir(parents=True)
            out.joinpath("eval.json").write_text(json.dumps({
                "exact_match": em, "nll": 2.0 - em, "ece": 0.1, "token_accuracy": em,
                "exact_match_by_task": {"add": em, "copy": 1.0}}))
    results = build_results(tmp_path / "fixed", config)
    assert results["summary"]["ntp"]["exact_match"]["mean"] == pytest.approx(0.42)
    assert results["summary"]["ntp"]["exact_match"]["std"] == pytest.approx(0.02)
    assert results["comparison"]["exact_match"]["verdict"] == "SFTMix better"
    assert results["comparison"]["ece"]["verdict"] == "no clear difference"
    table = results_markdown(results)
    assert "| exact match (↑) | 0.420 ± 0.020 | 0.470 ± 0.020 | +0.050" in table
    assert "| add | 0.42 ± 0.02 | 0.47 ± 0.02 |" in table
    assert "n=3" in table
