"""Every shipped configuration resolves, so none of them rots (nothing is downloaded)."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from sftmix.pipeline.experiment import demo_config
from sftmix.pipeline.experiment_config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if "accelerate" not in p.parts)
ACCELERATE = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_experiment_config_resolves(path):
    config = ExperimentConfig.from_yaml(path)
    model, data = config.model_args(), config.data_args()
    for method in config.methods:
        args = config.training_args(method, config.seeds[0], Path("/tmp/resolve"), split_file=Path("s.json"))
        assert args.method == method
    if "paper" in path.parts:
        # The paper's settings (Xiao et al., arXiv:2410.05248): lr 2e-6, wd 0.1, cosine, warm-up 0.1.
        assert (args.learning_rate, args.weight_decay, args.warmup_ratio) == (2e-6, 0.1, 0.1)
        assert args.get_warmup_steps(1000) == 100   # the warm-up really happens (transformers 5 has no warmup_ratio)
        assert args.lr_scheduler_type.value == "cosine"
        assert (args.mixup_alpha, args.mixup_weight) == (0.5, 0.2)
        assert args.per_device_train_batch_size * 8 == 32
        assert not model.model_name_or_path.startswith("tiny-") and data.dataset != "builtin"
        # Float32 master weights under bf16 autocast (pure-bf16 weights round 2e-6 updates away),
        # and the reference run is the NTP run of seed 0 (NTP is not trained twice).
        assert model.torch_dtype == "float32" and args.bf16
        assert config.reference_is_ntp_run


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_config_parses(path):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(path))
    assert config.num_processes >= 1
    raw = yaml.safe_load(path.read_text())
    if raw["distributed_type"] == "DEEPSPEED":
        assert raw["deepspeed_config"]["zero_stage"] in (2, 3)


def test_demo_yaml_matches_the_demo_command():
    for name, quick in (("demo.yaml", False), ("demo-quick.yaml", True)):
        from_file = dataclasses.asdict(ExperimentConfig.from_yaml(ROOT / "configs" / name))
        assert from_file == dataclasses.asdict(demo_config(quick)), name


def test_unknown_keys_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseedz: [1]\n")
    with pytest.raises(ValueError, match="unknown keys \\['seedz'\\]"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("name: x\ntraining:\n  learning_rat: 1\n")
    with pytest.raises(ValueError, match="training: unknown keys \\['learning_rat'\\]"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("name: x\ntraining:\n  mixup_alpha: -1\n")
    with pytest.raises(ValueError, match="mixup_alpha must be > 0"):
        ExperimentConfig.from_yaml(bad)


# ------------------------------------------------------------------ base: and YAML kinds
def test_base_key_deep_merges_chains_and_rejects_loops(tmp_path):
    from sftmix.pipeline.config_files import load_yaml_config

    (tmp_path / "a.yaml").write_text("name: a\nseeds: [0, 1]\ntraining:\n  learning_rate: 0.1\n  logging_steps: 5\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nname: b\ntraining:\n  learning_rate: 0.2\n")
    (tmp_path / "sub" / "c.yaml").write_text("base: b.yaml\nseeds: [3]\n")
    assert load_yaml_config(tmp_path / "sub" / "c.yaml") == {
        "name": "b", "seeds": [3], "training": {"learning_rate": 0.2, "logging_steps": 5}}
    (tmp_path / "x.yaml").write_text("base: y.yaml\nname: x\n")
    (tmp_path / "y.yaml").write_text("base: x.yaml\nname: y\n")
    with pytest.raises(ValueError, match="loops back"):
        load_yaml_config(tmp_path / "x.yaml")
    (tmp_path / "z.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_yaml_config(tmp_path / "z.yaml")


def test_shipped_configs_hold_only_their_differences():
    for folder in ("paper",):
        for path in (ROOT / "configs" / folder).glob("*.yaml"):
            raw = yaml.safe_load(path.read_text())
            if path.name != "base.yaml":
                assert raw["base"] == "base.yaml" and len(raw) <= 6, path


def test_wrong_kind_of_yaml_names_the_other_command(tmp_path, capsys):
    from sftmix.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(ROOT / "configs" / "demo-quick.yaml")])
    assert exit_info.value.code == 2 and "sftmix experiment" in capsys.readouterr().err
    flat = tmp_path / "flat.yaml"
    flat.write_text("learning_rate: 0.001\nn_train: 10\n")
    with pytest.raises(ValueError, match="sftmix train"):
        ExperimentConfig.from_yaml(flat)


def test_regime_base_config_resolves_for_every_cell():
    from sftmix.pipeline.regime import RegimeGrid, regime_configs

    configs = regime_configs(ROOT / "configs" / "regime" / "base.yaml", RegimeGrid())
    assert len(configs) == 3 * 3 * 2 and all(c.model["model_name_or_path"] == "tiny-base" for _, c in configs)
    assert len({c.name for _, c in configs}) == len(configs) and all(len(c.seeds) >= 5 for _, c in configs)


def test_warmup_ratio_becomes_the_warmup_that_transformers_5_runs():
    from sftmix.config import SFTMixConfig

    assert SFTMixConfig(output_dir="x").get_warmup_steps(200) == 20          # the paper's 0.1 by default
    assert SFTMixConfig(output_dir="x", warmup_ratio=0.0).get_warmup_steps(200) == 0
    assert SFTMixConfig(output_dir="x", warmup_steps=7).get_warmup_steps(200) == 7
    with pytest.raises(ValueError, match="warmup_ratio"):
        SFTMixConfig(output_dir="x", warmup_ratio=2.0)
    # The toy results were measured without warm-up; their configs say so.
    assert demo_config().training_args("ntp", 0, Path("/tmp/w")).get_warmup_steps(100) == 0
