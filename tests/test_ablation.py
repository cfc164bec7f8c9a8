"""The ablation runner: sweep plan, caching by key, results table, summaries, CLI."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sftmix.analysis.paper import paper_table, paper_vs_ours
from sftmix.pipeline import ablation
from sftmix.pipeline.experiment_config import ExperimentConfig


def is_cell(call) -> bool:
    """A training call of an ablation cell (``<run>/ablation/<param>=<value>/seed<k>``)."""
    return Path(call[1]).parents[1].name == "ablation"


def tiny_base(tmp_path, **overrides) -> ExperimentConfig:
    spec = dict(name="abl", runs_dir=str(tmp_path / "runs"), seeds=[0],
                model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": 16, "tiny_layers": 1,
                       "tiny_heads": 2},
                data={"n_train": 48, "n_test": 12, "max_length": 64},
                training={"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 3e-3,
                          "logging_steps": 2},
                reference_training={"num_train_epochs": 1}, recipe={"n_checkpoints": 1}, embeddings=False,
                figures=False, max_new_tokens=16)
    spec.update(overrides)
    return ExperimentConfig(**spec)


# -------------------------------------------------------------------------- the plan
def test_parse_values_types_and_validation():
    assert ablation.parse_values("mixup_alpha", "0.1, 1,2") == [0.1, 1.0, 2.0]
    assert ablation.parse_values("pairing", ["random"]) == ["random"]
    with pytest.raises(ValueError, match="cannot sweep"):
        ablation.parse_values("learning_rate", [1.0])
    with pytest.raises(ValueError, match="> 0"):
        ablation.parse_values("mixup_alpha", [0.0])
    with pytest.raises(ValueError, match="strictly between"):
        ablation.parse_values("split_ratio", [1.0])
    with pytest.raises(ValueError, match="unknown value"):
        ablation.parse_values("pairing", ["sideways"])
    # The paper's role-of-Mixup ablation is a sweep over the loss variant.
    assert ablation.parse_values("loss_variant", "equal,mixup_only") == ["equal", "mixup_only"]
    with pytest.raises(ValueError, match="loss_variant: unknown value"):
        ablation.parse_values("loss_variant", ["ntp_only"])


def test_plan_adds_the_centre_once(tmp_path):
    centre = ablation.centre_values(tiny_base(tmp_path))
    assert centre == {"mixup_alpha": 0.5, "mixup_weight": 0.2, "pairing": "confident_unconfident",
                      "split_ratio": 0.5, "loss_variant": "ntp_plus_mixup", "split_metric": "confidence"}
    plan = ablation._plan({"mixup_alpha": [2.0, 0.1], "pairing": ["random"], "split_ratio": [0.5, 0.3]},
                          centre, include_centre=True)
    assert plan == {"mixup_alpha": [0.1, 0.5, 2.0], "pairing": ["confident_unconfident", "random"],
                    "split_ratio": [0.3, 0.5]}
    assert ablation._plan({"mixup_alpha": [2.0]}, centre, include_centre=False) == {"mixup_alpha": [2.0]}
    assert ablation.cell_dir("r", "mixup_alpha", 2.0, 1) == Path("r/ablation/mixup_alpha=2/seed1")


# ------------------------------------------------------------ running, with fake stages
@pytest.fixture
def fake_stages(monkeypatch):
    """Stage functions that write the files the pipeline reads, and count training calls."""
    from sftmix.dynamics import dataset_fingerprint, save_dynamics
    from sftmix.pipeline import stages

    calls = []

    def reference_stage(ctx):
        ctx.rd.reference.mkdir(parents=True, exist_ok=True)
        ctx.rd.checkpoints.write_text("[]")

    def dynamics_stage(ctx):
        run = ctx.rd.root
        if ctx.held_out is not None:  # the fit table (header only: no checkpoints were scored)
            (run / "fit.csv").write_text("checkpoint,step,train_clean,train_noisy,held_out,gap,ratio\n")
        ids = list(ctx.train_examples["example_id"])
        conf = -np.linspace(1, 10, len(ids))
        table = pd.DataFrame({"example_id": ids, "confidence": conf, "confidence_prob": 1 / -conf,
                              "correctness": np.linspace(1, 0, len(ids))})
        save_dynamics(table, run / "dynamics.parquet", fingerprint=dataset_fingerprint(ids), model_name="fake",
                      checkpoints=[])

    def train_stage(ctx, method, seed, out, split_path, evaluating=True):
        calls.append((method, str(out), json.loads(Path(split_path).read_text())["ratio"]))
        out.mkdir(parents=True, exist_ok=True)
        (out / "log_history.json").write_text("[]")
        (out / "model.safetensors").write_bytes(b"weights")

    def eval_stage(ctx, out):
        t = ctx.config.training
        ratio = ctx.config.recipe_args().split_ratio
        nll = 3.0 if out.parent.name == "ntp" else (
            2.0 + 0.1 * t.get("mixup_alpha", 0.5) + t.get("mixup_weight", 0.2) + ratio)
        nll += 0.01 * int(out.name[len("seed"):])
        (out / "eval.json").write_text(json.dumps({"nll": nll, "exact_match": 0.5, "ece": 0.1,
                                                   "token_accuracy": 0.4}))

    def ntp_from_reference(ctx, out):  # the NTP run of seed 0 taken from the reference run
        out.mkdir(parents=True, exist_ok=True)
        (out / "log_history.json").write_text("[]")
        (out / "model.safetensors").write_bytes(b"weights")

    for name, fn in [("reference_stage", reference_stage), ("dynamics_stage", dynamics_stage),
                     ("train_stage", train_stage), ("eval_stage", eval_stage),
                     ("ntp_from_reference", ntp_from_reference)]:
        monkeypatch.setattr(stages, name, fn)
    return calls


def test_run_ablation_table_cells_and_cache(tmp_path, fake_stages):
    base = tiny_base(tmp_path)
    sweep = {"mixup_alpha": [2.0], "split_ratio": [0.25], "pairing": ["random"]}
    results = ablation.run_ablation(base, sweep, seeds=[0, 1], progress=False)
    run = base.run_dir

    assert list(results.columns) == list(ablation.RESULT_COLUMNS)
    assert len(results) == 2 * (1 + 2 + 2 + 2)  # baseline + (centre, value) per param, per seed
    cells = [c for c in fake_stages if is_cell(c)]
    assert len(cells) == 3 * 2  # only the non-centre values are trained
    base_train = [c for c in fake_stages if not is_cell(c)]
    assert sorted(Path(c[1]).parent.name for c in base_train) == ["ntp", "ntp", "sftmix", "sftmix"]

    alpha2 = results[(results.param == "mixup_alpha") & (results.value == 2.0)].set_index("seed").nll
    assert alpha2.to_dict() == pytest.approx({0: 2.0 + 0.2 + 0.2 + 0.5, 1: 2.0 + 0.2 + 0.2 + 0.5 + 0.01})
    centre = results[results.centre].groupby("seed").nll.unique()
    sftmix0 = json.loads((run / "sftmix" / "seed0" / "eval.json").read_text())["nll"]
    assert list(centre[0]) == [pytest.approx(sftmix0)]
    assert (results[results.param == ablation.BASELINE].nll.round(2) == [3.0, 3.01]).all()

    # split_ratio cells train on their own split, re-cut from the shared table
    split = json.loads((run / "ablation" / "split_ratio=0.25" / "split.json").read_text())
    assert len(split["confident"]) == round(0.25 * 48)
    assert {c[2] for c in cells if "split_ratio" in c[1]} == {0.25}
    assert not list((run / "ablation").rglob("*.safetensors"))  # weights dropped by default
    assert (run / "ablation" / "mixup_alpha=2" / "seed1" / "eval.json").exists()

    pd.testing.assert_frame_equal(ablation.load_ablation(run), results, check_dtype=False)

    fake_stages.clear()
    again = ablation.run_ablation(base, sweep, seeds=[0, 1], progress=False)
    assert fake_stages == []  # every cell (and the base run) is cached
    pd.testing.assert_frame_equal(again, results)


def test_split_metric_cells_train_on_a_split_by_that_metric(tmp_path, fake_stages):
    base = tiny_base(tmp_path)
    results = ablation.run_ablation(base, {"split_metric": ["correctness"]}, seeds=[0], progress=False)
    assert results[results.param == "split_metric"].value.tolist() == ["confidence", "correctness"]
    split = json.loads((base.run_dir / "ablation" / "split_metric=correctness" / "split.json").read_text())
    assert split["metric"] == "correctness" and split["ratio"] == base.recipe_args().split_ratio
    assert [c for c in fake_stages if is_cell(c)] == [
        ("sftmix", str(base.run_dir / "ablation" / "split_metric=correctness" / "seed0"),
         base.recipe_args().split_ratio)]
    fake_stages.clear()
    ablation.run_ablation(base, {"split_metric": ["correctness"]}, seeds=[0], progress=False)
    assert fake_stages == []  # cached


def test_changed_base_config_invalidates_cells(tmp_path, fake_stages):
    sweep = {"mixup_alpha": [2.0]}
    ablation.run_ablation(tiny_base(tmp_path), sweep, seeds=[0], progress=False)
    fake_stages.clear()
    changed = tiny_base(tmp_path, training={**tiny_base(tmp_path).training, "mixup_weight": 0.5})
    results = ablation.run_ablation(changed, sweep, seeds=[0], progress=False)
    assert [c for c in fake_stages if is_cell(c)], "the cell must be retrained"
    cell = results[(results.param == "mixup_alpha") & (results.value == 2.0)].nll.iloc[0]
    assert cell == pytest.approx(2.0 + 0.2 + 0.5 + 0.5)
    assert ablation.centre_values(changed)["mixup_weight"] == 0.5


def test_cli_ablate_writes_summary_and_figures(tmp_path, fake_stages, capsys):
    from sftmix.cli import main

    base = tiny_base(tmp_path)
    cfg = dataclasses.asdict(base)
    path = tmp_path / "abl.yaml"
    path.write_text(yaml.safe_dump(cfg))
    main(["ablate", str(path), "--param", "mixup_weight", "--values", "0.5,1", "--seeds", "0,1"])
    out = base.run_dir / "ablation"
    results = pd.read_csv(out / "results.csv")
    assert set(results.param) == {ablation.BASELINE, "mixup_weight"}
    assert sorted(results[results.param == "mixup_weight"].value.astype(float).unique()) == [0.2, 0.5, 1.0]
    assert (out / "summary.md").exists() and (out / "ablation_nll.png").exists()
    assert "within noise" in capsys.readouterr().out or "better" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit):
        main(["ablate", str(path), "--param", "mixup_weight"])  # --values missing


# ------------------------------------------------------------------------ reporting
def synthetic_results(seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for s in seeds:
        base = [1.0, 1.2, 0.9][s]
        rows += [
            {"param": ablation.BASELINE, "value": "ntp", "seed": s, "exact_match": base - 0.1, "nll": 2.0,
             "centre": False},
            {"param": "mixup_alpha", "value": 0.5, "seed": s, "exact_match": base, "nll": 2.0 + 0.01 * s,
             "centre": True},
            {"param": "mixup_alpha", "value": 2.0, "seed": s, "exact_match": base + 0.5, "nll": 2.2 + 0.01 * s,
             "centre": False},
            {"param": "mixup_alpha", "value": 0.1, "seed": s, "exact_match": base + [0.2, -0.2, 0.05][s],
             "nll": 2.0, "centre": False},
            {"param": "pairing", "value": "confident_unconfident", "seed": s, "exact_match": base, "nll": 2.0,
             "centre": True},
            {"param": "pairing", "value": "random", "seed": s, "exact_match": base, "nll": 2.0, "centre": False},
        ]
    frame = pd.DataFrame(rows)
    frame["ece"] = frame["token_accuracy"] = 0.0
    return frame[list(ablation.RESULT_COLUMNS)]


def test_summarize_ablation_claims_only_outside_the_spread():
    summary = ablation.summarize_ablation(synthetic_results(), "exact_match").set_index(["param", "value"])
    assert summary.loc[("mixup_alpha", 0.5), "verdict"] == "centre"
    assert summary.loc[("mixup_alpha", 2.0), "verdict"] == "better"
    assert summary.loc[("mixup_alpha", 2.0), "diff"] == pytest.approx(0.5)
    assert summary.loc[("mixup_alpha", 0.1), "verdict"] == "within noise"
    nll = ablation.summarize_ablation(synthetic_results(), "nll").set_index(["param", "value"])
    assert nll.loc[("mixup_alpha", 2.0), "verdict"] == "worse"  # lower NLL is better
    one = ablation.summarize_ablation(synthetic_results(seeds=(0,)), "exact_match")
    assert set(one.verdict) == {"centre", "no claim (1 seed)"}
    assert one.ci95_low.isna().sum() == 3


def test_baseline_band_and_plot_sweep():
    results = synthetic_results()
    band = ablation.baseline_band(results, "exact_match")
    assert band["mean"] == pytest.approx(np.mean([0.9, 1.1, 0.8]))
    assert band["std"] > 0 and "NTP" in band["label"]
    fig = ablation.plot_sweep(results, "exact_match")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_xlabel() for ax in panels] == ["mixup_alpha", "pairing"]
    for ax in panels:  # the NTP line and its band
        assert any(ln.get_linestyle() == "--" for ln in ax.get_lines())
        assert any(math.isclose(p.get_alpha() or 0, 0.18) for p in ax.patches)
    text = ablation.summary_markdown(results)
    assert "| mixup_alpha | 2 | 3 |" in text and "not findings" in text


def test_paper_numbers_and_directions():
    alpaca = paper_table("Alpaca-52K")
    assert alpaca.loc[("Llama-3.1-8B", "SFTMix"), "MT-Bench"] == 4.58
    assert alpaca.loc[("Qwen-2.5-14B", "NTP"), "AlpacaEval-2 LC WR"] == 13.95
    assert paper_table("MedAlpaca-263K").loc[("Mistral-7B", "SFTMix"), "average"] == 55.98
    with pytest.raises(KeyError):
        paper_table("nope")
    ours = {"name": "r", "seeds": [0, 1],
            "summary": {"ntp": {"nll": {"mean": 2.0}, "exact_match": {"mean": 0.3}},
                        "sftmix": {"nll": {"mean": 1.9}, "exact_match": {"mean": 0.2}}},
            "comparison": {"nll": {"verdict": "no clear difference"}}}
    table = paper_vs_ours(ours)
    paper = table[table.source.str.startswith("paper")]
    assert len(paper) == 3 * 3 + 2 * 5 and (paper.direction == "better").all()
    mine = table[table.source.str.startswith("ours")].set_index("metric")
    assert mine.loc["nll (↓)", "direction"] == "better (within noise)"
    assert mine.loc["nll (↓)", "verdict"] == "no clear difference"
    assert mine.loc["exact_match (↑)", "direction"] == "worse (within noise)"  # no comparison given
    ours["comparison"]["nll"]["verdict"] = "SFTMix better"
    assert paper_vs_ours(ours).set_index("metric").loc["nll (↓)", "direction"] == "better"
    one = {**ours, "seeds": [0], "comparison": {}}  # the demo: one seed, no interval, no direction
    mine = paper_vs_ours(one)
    assert set(mine[mine.source.str.startswith("ours")].direction) == {"no claim (one seed)"}


# ------------------------------------------------------------------------ real run
@pytest.mark.slow
def test_run_ablation_end_to_end_on_a_tiny_model(tmp_path):
    base = tiny_base(tmp_path)
    # The demo logs a held-out curve during training; ablation cells train without one.
    base = base.override({"training.eval_strategy": "epoch"})
    results = ablation.run_ablation(base, {"mixup_alpha": [2.0], "split_ratio": [0.25]}, seeds=[0],
                                    progress=False)
    assert len(results) == 1 + 2 + 2
    assert results[["nll", "ece", "token_accuracy", "exact_match"]].notna().all().all()
    assert (results.nll > 0).all()
    cell = base.run_dir / "ablation" / "mixup_alpha=2" / "seed0"
    cfg = json.loads((cell / "train_config.json").read_text())["training"]
    assert cfg["mixup_alpha"] == 2.0 and cfg["method"] == "sftmix"
    assert not list(cell.glob("*.safetensors"))
    ratio_cfg = json.loads((base.run_dir / "ablation" / "split_ratio=0.25" / "seed0" / "train_config.json")
                           .read_text())["training"]
    assert ratio_cfg["split_file"].endswith("split_ratio=0.25/split.json")


@pytest.mark.slow
def test_the_new_pairing_and_split_metric_are_swept_on_a_tiny_model(tmp_path):
    from sftmix.dynamics import load_dynamics, split_by_confidence

    base = tiny_base(tmp_path)
    results = ablation.run_ablation(base, {"pairing": ["length_matched"], "split_metric": ["confidence_last"]},
                                    seeds=[0], progress=False)
    cells = results[~results.centre & (results.param != ablation.BASELINE)]
    assert sorted(cells.value) == ["confidence_last", "length_matched"] and (cells.nll > 0).all()
    folder = base.run_dir / "ablation"
    cfg = json.loads((folder / "pairing=length_matched" / "seed0" / "train_config.json").read_text())["training"]
    assert cfg["pairing"] == "length_matched"
    split = json.loads((folder / "split_metric=confidence_last" / "split.json").read_text())
    ratio = base.recipe_args().split_ratio
    assert split == split_by_confidence(load_dynamics(base.run_dir / "dynamics.parquet"), ratio,
                                        "confidence_last")


def test_effects_table_adds_ntp_against_the_recipe_and_plot_draws_each_interval():
    from sftmix.viz.plots import plot_ablation_effects

    results = synthetic_results()
    effects = ablation.effects_table(results, "exact_match").set_index(["param", "value"])
    ntp = effects.loc[(ablation.BASELINE, "ntp")]
    assert ntp["diff"] == pytest.approx(-0.1) and ntp["verdict"] == "worse"  # NTP is 0.1 below the recipe
    fig = plot_ablation_effects(ablation.effects_table(results, "exact_match"), metric="exact_match")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "NTP (no Mixup)" and "mixup_alpha = 2" in labels and "mixup_alpha = 0.5" not in labels
    drawn = {tuple(np.round(line.get_xdata(), 6)) for line in ax.lines if len(line.get_xdata()) == 2}
    cell = effects.loc[("mixup_alpha", 0.1)]
    assert (round(cell["ci95_low"], 6), round(cell["ci95_high"], 6)) in drawn
    # an interval covering zero is grey; one excluding it is coloured
    grey = [l for l in ax.lines if len(l.get_xdata()) == 2 and l.get_color() == "0.45"]
    assert len(grey) == 2  # mixup_alpha = 0.1 and pairing = random (zero difference)


def test_lesson_config_is_the_demo_with_three_seeds(tmp_path):
    from sftmix.pipeline import ablation_lesson
    from sftmix.pipeline.experiment import demo_config

    lesson, demo = ablation_lesson.lesson_config(tmp_path), demo_config(runs_dir=str(tmp_path))
    assert lesson.data == demo.data and lesson.training == demo.training and lesson.model == demo.model
    assert lesson.seeds == [0, 1, 2] and not lesson.embeddings and lesson.run_dir.parent == tmp_path
    assert set(ablation_lesson.LESSON_SWEEP) == set(ablation.DEFAULT_SWEEP)  # the paper's knobs
    assert set(ablation.SWEEPABLE) == set(ablation_lesson.EXPECTATIONS)
    for param, values in ablation_lesson.LESSON_SWEEP.items():
        assert ablation.parse_values(param, values)  # every value is one the recipe accepts


def test_shipped_sweep_adds_the_two_choices_beyond_the_paper():
    from sftmix.pipeline import ablation_lesson
    from sftmix.recipe import PAIRINGS, SUMMARIES

    sweep = ablation_lesson.shipped_sweep()
    assert sweep["pairing"][-1] == "length_matched" and sweep["split_metric"] == ["confidence_last"]
    assert not PAIRINGS["length_matched"].paper and not SUMMARIES["confidence_last"].paper
    for param, values in sweep.items():
        assert ablation.parse_values(param, values) == values
    assert ablation_lesson.LESSON_SWEEP["pairing"] == ["random", "confident_confident", "unconfident_unconfident"]
