"""The base-model study: its configurations, paired tables with Holm-adjusted p-values, the spread
claim, its figures, and the committed-results writer and reader on a tiny study."""

import json
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from sftmix.cli import main
from sftmix.pipeline.experiment import demo_config, study_configs
from sftmix.pipeline.study_report import paired_table, spread_table
from sftmix.viz.plots import plot_cells, plot_confidence_agreement

METRICS = {"nll": ("NLL", False), "token_accuracy": ("accuracy", True)}


def _cells(rows):
    return pd.DataFrame([{"cell": c, "seed": s, "nll": n, "token_accuracy": a} for c, s, n, a in rows])


def test_paired_table_differences_intervals_and_holm_adjusted_verdicts():
    # SFTMix lowers NLL by 0.10, 0.12, 0.11 (a tight difference); accuracy moves +0.01, -0.02, +0.01 (noise).
    cells = _cells([("ntp", 0, 2.00, 0.50), ("ntp", 1, 2.10, 0.52), ("ntp", 2, 2.05, 0.51),
                    ("sftmix", 0, 1.90, 0.51), ("sftmix", 1, 1.98, 0.50), ("sftmix", 2, 1.94, 0.52)])
    table = paired_table(cells, "sftmix", "ntp", METRICS).set_index("key")
    nll, acc = table.loc["nll"], table.loc["token_accuracy"]
    assert nll.diff_mean == pytest.approx(-0.11) and nll.per_seed == pytest.approx([-0.10, -0.12, -0.11])
    # d = [-.10, -.12, -.11]: sd 0.01, t = 0.11 / (0.01 / sqrt 3) = 19.05 on 2 df -> p = 0.00274
    assert nll.p_value == pytest.approx(0.002744, abs=2e-5)
    assert nll.p_holm == pytest.approx(2 * nll.p_value)  # the smaller of two p-values is doubled
    assert acc.p_holm == pytest.approx(max(acc.p_value, nll.p_holm))
    assert nll.verdict == "SFTMix, own reference better" and acc.verdict == "no clear difference"
    assert nll.interval.startswith("-0.110 [")


def test_paired_table_gives_no_verdict_under_three_seeds_and_names_the_better_cell_either_way():
    two = _cells([("ntp", 0, 2.0, 0.5), ("ntp", 1, 2.1, 0.5), ("sftmix_xref", 0, 1.0, 0.5),
                  ("sftmix_xref", 1, 1.1, 0.5)])
    assert set(paired_table(two, "sftmix_xref", "ntp", METRICS)["verdict"]) == {"no verdict (fewer than 3 seeds)"}
    worse = _cells([("sftmix", s, 2.0 + 0.01 * s, 0.5) for s in range(3)]
                   + [("sftmix_xref", s, 2.5 + 0.02 * s, 0.5) for s in range(3)])
    verdict = paired_table(worse, "sftmix_xref", "sftmix", METRICS).set_index("key").loc["nll", "verdict"]
    assert verdict == "SFTMix, own reference better"


def test_spread_table_is_the_relative_change_against_ntp_per_seed():
    spread = pd.DataFrame([{"cell": c, "seed": s, "confidence_std": v} for c, s, v in [
        ("ntp", 0, 10.0), ("sftmix", 0, 9.3), ("sftmix_xref", 0, 11.0), ("ntp", 1, 8.0), ("sftmix", 1, 8.0),
        ("sftmix_xref", 1, 6.0)]])
    table = spread_table(spread).set_index("seed")
    assert table["sftmix_vs_ntp"].tolist() == pytest.approx([-0.07, 0.0])
    assert table["sftmix_xref_vs_ntp"].tolist() == pytest.approx([0.10, -0.25])


def test_study_figures_are_figures():
    dyn = pd.DataFrame({"example_id": list("abcd"), "confidence": [1.0, 2.0, 3.0, 4.0],
                        "noisy": [True, False, False, False]})
    other = dyn.assign(confidence=[2.0, 1.0, 4.0, 3.0])
    fig = plot_confidence_agreement(dyn, other, names=("gemma", "smollm2"))
    assert isinstance(fig, Figure) and "Spearman 0.60" in fig.axes[0].get_title()
    assert "halves share 100%" in fig.axes[0].get_title()
    cells = _cells([(c, s, 2.0 + s, 0.5) for c in ("ntp", "sftmix") for s in range(3)])
    fig = plot_cells(cells, {"nll": "NLL", "token_accuracy": "acc"})
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_the_study_configs_train_the_same_examples_and_differ_only_in_the_reference():
    own, xref = study_configs(smoke=False, seeds=[0, 1, 2])
    assert own.model_args().model_name_or_path == "gemma3-270m" and own.model_args().chat_template == "gemma"
    assert xref.model_args(reference=True).model_name_or_path == "smollm2-135m"
    assert own.data_args() == xref.data_args() and own.seeds == xref.seeds == [0, 1, 2]
    assert own.reference_is_ntp_run and xref.methods == ["sftmix"]
    assert xref.recipe_args().reference_max_length > own.data_args().max_length
    assert demo_config(real="gemma3").model_args().model_name_or_path == "gemma3-270m"


def test_demo_real_gemma3_has_one_size(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--real", "gemma3", "--quick"])
    assert exit_.value.code == 2 and "drop --quick" in capsys.readouterr().err
    with pytest.raises(ValueError, match="choose one of"):
        demo_config(real="llama")


@pytest.mark.slow
def test_a_tiny_study_writes_and_reads_its_committed_results(tmp_path):
    from sftmix.pipeline import confidence_spread, read_study_results, run_experiment, write_study_report

    own, xref = study_configs(smoke=True, runs_dir=str(tmp_path))
    for config in (own, xref):
        run_experiment(config, progress=False)
    spread = pd.concat([confidence_spread(own), confidence_spread(xref, methods=("sftmix",))
                        .assign(method="sftmix_xref")]).rename(columns={"method": "cell"})
    out = tmp_path / "report"
    written = {Path(p).name for p in write_study_report(own.run_dir, xref.run_dir, out, spread=spread,
                                                        made_by="a test")}
    assert {"study.md", "cells.csv", "study.json", "agreement.png", "cells.png", "results.md",
            "representation_space.png"} <= written
    answers = sorted(p.name for p in (out / "mt_bench" / "model_answer").iterdir())
    assert answers == ["tiny-gemma3-ntp-seed0.jsonl", "tiny-gemma3-sftmix-seed0.jsonl",
                       "tiny-gemma3-sftmix-xref-seed0.jsonl"]
    first = json.loads((out / "mt_bench" / "model_answer" / answers[-1]).read_text().splitlines()[0])
    assert first["model_id"] == "tiny-gemma3-sftmix-xref-seed0"   # FastChat keys the judge's table by it
    study = read_study_results(out)
    assert set(study["cells"]["cell"]) == {"ntp", "sftmix", "sftmix_xref"}
    assert study["study"]["reference_model"] == "tiny-llama" and study["study"]["agreement"]["n"] == 16
    assert set(study["reference_dynamics"]["example_id"]) == set(study["dynamics"]["example_id"])
    assert {"prompt", "ntp", "sftmix", "sftmix_xref"} <= set(study["answers"].columns)
    assert study["answers"]["prompt"].str.len().gt(0).all()
    assert {"ntp_followed", "sftmix_xref_answer"} <= set(study["checks"].columns)
    md = (out / "study.md").read_text()
    assert "SFTMix, cross-family reference − NTP" in md and "not calibrated" in md
    assert "no verdict (fewer than 3 seeds)" in md   # one seed: every cell shown, no verdict
