"""The experiment's configuration: resolved once, changed by one typed override call."""

import dataclasses
import json

import pytest

from sftmix.cli import main
from sftmix.errors import ConfigError
from sftmix.pipeline.experiment_config import ExperimentConfig
from tests.helpers import tiny_config


def test_resolved_once_into_the_typed_arguments(tmp_path):
    config = tiny_config(tmp_path)
    assert config.model_args() is config.model_args()             # built when the config was made
    assert config.data_args().n_train == 96 and config.model_args().tiny_hidden_size == 16
    args = config.training_args("sftmix", 3, tmp_path / "out")
    assert (args.method, args.seed, args.output_dir) == ("sftmix", 3, str(tmp_path / "out"))
    assert args.learning_rate == 3e-3 and args.split_file is None  # no placeholder split path
    with_split = config.training_args("sftmix", 3, tmp_path / "out", split_file=tmp_path / "s.json",
                                      extra={"save_strategy": "epoch"})
    assert with_split.split_file == str(tmp_path / "s.json") and with_split.save_strategy == "epoch"
    reference = config.reference_args()
    assert reference.num_train_epochs == 1 and reference.method == "ntp"  # reference_training over training
    assert reference.eval_strategy == "no"


def test_bad_values_fail_when_the_config_is_made_naming_the_section(tmp_path):
    with pytest.raises(ConfigError, match=r"training: mixup_alpha must be > 0"):
        tiny_config(tmp_path, training={"mixup_alpha": -1})
    with pytest.raises(ConfigError, match=r"data: unknown keys \['n_trian'\].*did you mean 'n_train'"):
        tiny_config(tmp_path, data={"n_trian": 5})
    with pytest.raises(ConfigError, match="set per run by the pipeline"):
        tiny_config(tmp_path, training={"seed": 3})
    with pytest.raises(ConfigError, match=r"reference_training: warmup_ratio must be a fraction"):
        tiny_config(tmp_path, reference_training={"warmup_ratio": 2.0})
    with pytest.raises(ConfigError, match=r"training: method='sftmix' .* must be even, got 3"):
        tiny_config(tmp_path, training={"per_device_train_batch_size": 3})


def test_override_changes_settings_by_dotted_name(tmp_path):
    config = tiny_config(tmp_path)
    changed = config.override({"data.n_train": 600, "training.mixup_alpha": 2.0, "recipe.split_ratio": 0.3,
                               "methods": ["sftmix"], "reference_training.num_train_epochs": 3})
    assert changed.data_args().n_train == 600 and changed.data["max_length"] == 96  # other keys kept
    assert changed.training_args("sftmix", 0, tmp_path).mixup_alpha == 2.0
    assert changed.recipe_args().split_ratio == 0.3 and changed.methods == ["sftmix"]
    assert changed.reference_args().num_train_epochs == 3
    assert config.data["n_train"] == 96 and config.recipe_args().split_ratio == 0.5     # the original is untouched
    assert dataclasses.asdict(config.override({})) == dataclasses.asdict(config)
    assert config.override({"training.num_train_epochs": 4}).training["num_train_epochs"] == 4  # int for float


@pytest.mark.parametrize("changes, message", [
    ({"data.n_trian": 5}, r"DataArguments has no field 'n_trian' \(did you mean 'n_train'\?\)"),
    ({"trainig.mixup_alpha": 1.0}, "'trainig' is not a section"),
    ({"recipe.split_ratoi": 0.3}, r"RecipeArguments has no field 'split_ratoi' \(did you mean 'split_ratio'\?\)"),
    ({"split_ratio": 0.3}, r"'split_ratio' is now recipe.split_ratio"),                # an older layout's key
    ({"data.n_train": "600"}, "expected int, got str '600'"),
    ({"training.mixup_alpha": True}, "expected a number, got True"),
    ({"recipe.split_ratio": 1.5}, "split_ratio must lie strictly between 0 and 1"),   # checked by resolving again
    ({"training.pairing": "sideways"}, "pairing='sideways' is not valid"),
])
def test_override_names_what_is_wrong(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(tmp_path).override(changes)


def test_cli_set_changes_the_yaml(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    spec = dataclasses.asdict(tiny_config(tmp_path / "runs"))
    path.write_text(json.dumps(spec))  # JSON is YAML
    from sftmix.cli.common import load_experiment_config

    config = load_experiment_config(str(path), ["data.n_train=40", "methods=[ntp]", "training.mixup_alpha=1.5"])
    assert config.data["n_train"] == 40 and config.methods == ["ntp"] and config.training["mixup_alpha"] == 1.5
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", str(path), "--set", "data.n_trian=40"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "did you mean 'n_train'" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["experiment", str(path), "--set", "data.n_train"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()                                     # rejected before any work


def test_from_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("recipe:\n  split_metric: mean\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: recipe: split_metric='mean'"):
        ExperimentConfig.from_yaml(path)
    path.write_text("n_checkpoints: 2\ntraining:\n  record_dynamics: true\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: 'n_checkpoints' is now recipe.n_checkpoints"):
        ExperimentConfig.from_yaml(path)
    path.write_text("training:\n  record_dynamics: true\n")
    with pytest.raises(ConfigError, match=r"'training.record_dynamics' is now recipe.dynamics_mode"):
        ExperimentConfig.from_yaml(path)


def test_override_takes_transformers_options_by_their_names(tmp_path):
    config = tiny_config(tmp_path).override({"training.eval_strategy": "epoch", "training.lr_scheduler_type": "linear",
                                             "training.report_to": ["none"]})
    args = config.training_args("ntp", 0, tmp_path)
    assert args.eval_strategy == "epoch" and args.lr_scheduler_type == "linear"
    with pytest.raises(ConfigError, match="training: .*sometimes"):
        tiny_config(tmp_path).override({"training.eval_strategy": "sometimes"})


def test_override_types_do_not_depend_on_a_parser_having_run(tmp_path):
    from sftmix.cli.common import parse_training_args

    parse_training_args(["--report_to", "none"], "sftmix train")  # HfArgumentParser rewrites Field.type
    config = tiny_config(tmp_path).override({"training.report_to": ["none"], "data.max_examples": None})
    assert config.training["report_to"] == ["none"] and config.data["max_examples"] is None
