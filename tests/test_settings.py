"""Every setting an experiment YAML accepts acts or is refused; what sftmix writes, sftmix reads.

For each field of DataArguments, RecipeArguments, the recipe's own SFTMixConfig fields and the
experiment's own keys, a non-default value must change what the pipeline does (the prepared and
tokenized data, or the stage keys that decide what re-runs) or be refused with a line naming the
key. A new field fails :func:`test_every_field_has_a_case` until it gets a case here.
"""

import dataclasses
import json
from pathlib import Path

import pytest
from transformers import TrainingArguments

from sftmix.config import DataArguments, RecipeArguments, SFTMixConfig
from sftmix.data import load_examples, tokenize_examples
from sftmix.data.prepare import prepare_train_eval
from sftmix.errors import ConfigError
from sftmix.pipeline.context import RunContext, open_run, tokenize_for_training
from sftmix.pipeline.experiment import experiment_stages, settings_key
from sftmix.pipeline.experiment_config import ExperimentConfig
from sftmix.pipeline.runner import derive_keys
from sftmix.toy import build_toy_tokenizer

from .helpers import tiny_config

# ------------------------------------------------------------------------------ data
#: A ShareGPT file: multi-turn chats, an exact repeat, a long answer and a trailing unanswered turn.
CHATS = [
    {"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello there"},
                                  {"from": "human", "value": "and now?"}, {"from": "gpt", "value": "now we talk"}]},
    {"id": "b", "conversations": [{"from": "human", "value": "name a colour"}, {"from": "gpt", "value": "blue"}]},
    {"id": "c", "conversations": [{"from": "human", "value": "name a colour"}, {"from": "gpt", "value": "blue"}]},
    {"id": "d", "conversations": [{"from": "human", "value": "count"}, {"from": "gpt", "value": "one two " * 30}]},
    {"id": "e", "conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"},
                                  {"from": "human", "value": "dangling"}]},
    {"id": "f", "conversations": [{"from": "human", "value": "a b"}, {"from": "gpt", "value": "c d"},
                                  {"from": "human", "value": "e f"}, {"from": "gpt", "value": "g h"}]},
    {"id": "g", "conversations": [{"from": "human", "value": "say yes"}, {"from": "gpt", "value": "yes"}]},
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    chats, held, broken = folder / "chats.jsonl", folder / "held.jsonl", folder / "broken.json"
    chats.write_text("".join(json.dumps(c) + "\n" for c in CHATS))
    held.write_text("".join(json.dumps(c) + "\n" for c in CHATS[:2]))
    broken.write_text(json.dumps(CHATS[:3])[:-40])  # cut in the middle of the third record
    return {"chats": str(chats), "held": str(held), "broken": str(broken)}


SUITE = {"n_train": 40, "n_test": 8, "max_length": 64}


def data_cases(files) -> dict:
    """``{field: (base data settings, changed value)}``."""
    chats = {"dataset": files["chats"], "max_length": 64}
    return {
        "dataset": ({**chats, "dataset": files["held"]}, files["chats"]),
        "dataset_split": (SUITE, "test"),
        "eval_dataset": (chats, files["held"]),
        "eval_split": ({**chats, "eval_dataset": "builtin"}, "train"),
        "dataset_format": (chats, "alpaca"),
        "max_length": (chats, 24),
        "max_examples": (chats, 3),
        "last_turn_only": (chats, True),
        "n_train": (SUITE, 30),
        "n_test": (SUITE, 4),
        "noise": (SUITE, 0.3),
        "suite_seed": (SUITE, 1),
        "tasks": (SUITE, "add,multiply"),
        "strict": (chats, True),
        "keep_complete_records": ({"dataset": files["broken"]}, True),
        "max_exchanges": (chats, 1),
        "drop_duplicates": (chats, True),
        "drop_overlong": (chats, True),
        "held_out_size": (chats, 2),
        "train_size": (chats, 3),
        "selection_seed": ({**chats, "train_size": 3}, 1),
    }


def what_trains(data: dict):
    """What a run on these data settings trains and evaluates on: the tokens of each prepared set."""
    args = DataArguments(**data)
    tokenizer = build_toy_tokenizer()
    try:
        train, held_out = prepare_train_eval(args, tokenizer)
    except (ValueError, OSError) as exc:  # a refusal while reading: the setting acted
        return ("error", str(exc))
    sets = [train] + ([held_out] if held_out is not None else [])
    return [(t["example_id"], t["input_ids"], t["labels"]) for t in
            (tokenize_for_training(s, tokenizer, args) for s in sets)]


def test_every_field_has_a_case(files):
    assert set(data_cases(files)) == {f.name for f in dataclasses.fields(DataArguments)}
    own = {f.name for f in dataclasses.fields(SFTMixConfig)} - {f.name for f in dataclasses.fields(TrainingArguments)}
    assert set(TRAINING_CASES) | set(REFUSED_TRAINING) >= own
    assert set(RECIPE_CASES) == {f.name for f in dataclasses.fields(RecipeArguments)}
    assert set(EXPERIMENT_CASES) == {f.name for f in dataclasses.fields(ExperimentConfig)}


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(DataArguments)])
def test_every_data_setting_changes_what_trains(files, name):
    base, value = data_cases(files)[name]
    assert what_trains({**base, name: value}) != what_trains(base), f"data.{name}={value!r} changed nothing"


@pytest.mark.parametrize("data, name", [
    (SUITE, "drop_duplicates"), (SUITE, "held_out_size"), (SUITE, "strict"), (SUITE, "dataset_format"),
    ({"dataset": "chats.jsonl"}, "n_train"), ({"dataset": "chats.jsonl"}, "tasks"),
    ({"dataset": "chats.jsonl"}, "dataset_split"), (SUITE, "eval_split")])
def test_data_settings_the_source_cannot_use_are_refused(data, name):
    value = {"drop_duplicates": True, "held_out_size": 3, "strict": True, "dataset_format": "chat", "n_train": 5,
             "tasks": "add", "dataset_split": "test", "eval_split": "train"}[name]
    with pytest.raises(ConfigError, match=rf"{name}=.* has no effect"):
        DataArguments(**{**data, name: value})
    with pytest.raises(ConfigError, match=rf"data: {name}="):  # in an experiment, the section is named too
        ExperimentConfig(data={**data, name: value})


# ------------------------------------------------------------------- stage keys
TRAINING_CASES = {"mixup_alpha": 1.0, "mixup_weight": 0.5, "loss_variant": "equal", "pairing": "random",
                  "mixup_alignment": "sequence", "ce_chunk_size": 128, "length_window": 4,
                  "remove_unused_columns": True, "logging_steps": 5, "learning_rate": 1e-4,
                  "lr_scheduler_type": "linear", "warmup_steps": 0.0, "warmup_ratio": 0.2, "weight_decay": 0.0}
#: Set per run by the pipeline: refused in an experiment's training section.
REFUSED_TRAINING = {"method": "sftmix", "split_file": "s.json", "save_strategy": "steps"}
RECIPE_CASES = {"n_checkpoints": 3, "dynamics_mode": "online", "confidence_tokens": "trained",
                "reference_weights": "all", "split_ratio": 0.3, "split_metric": "correctness",
                "ntp_from_reference": False, "reference_max_length": 96}
EXPERIMENT_CASES = {"name": "other", "runs_dir": "elsewhere", "seeds": [1], "methods": ["sftmix"],
                    "model": {"tiny_hidden_size": 8}, "data": {"n_train": 30}, "training": {"mixup_alpha": 1.0},
                    "reference_model": {"model_name_or_path": "tiny-llama", "tiny_hidden_size": 8},
                    "reference_training": {"num_train_epochs": 2}, "recipe": {"split_ratio": 0.3},
                    "generate": False, "max_new_tokens": 8, "exact_match": False, "embeddings": False,
                    "projection": "umap", "figures": True, "instruct": {"per_category": 1},
                    "keep_weights": "reference"}


def stage_keys(config: ExperimentConfig) -> tuple:
    """Where the run goes and every stage's key: what decides which stages run (again)."""
    ctx = open_run(config, progress=False)
    return str(ctx.rd.root), derive_keys(experiment_stages(ctx))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    # No reference_training: the NTP run of seed 0 is the reference run, so ntp_from_reference can act.
    base = tiny_config(runs, reference_training={}, data={"n_train": 24, "n_test": 4, "max_length": 64})
    return base, stage_keys(base)


@pytest.mark.parametrize("name, value", TRAINING_CASES.items())
def test_every_training_setting_changes_the_training_keys(keyed, name, value):
    base, keys = keyed
    changed = stage_keys(base.override({f"training.{name}": value}))[1]
    assert changed["train/sftmix/seed0"] != keys[1]["train/sftmix/seed0"]


@pytest.mark.parametrize("name, value", RECIPE_CASES.items())
def test_every_recipe_setting_changes_the_stage_keys(keyed, name, value):
    base, keys = keyed
    if name == "reference_max_length":  # acts only on a reference of another tokenizer
        base = base.override({"reference_model": {"model_name_or_path": "tiny-gemma3", "tiny_hidden_size": 8,
                                                  "tiny_heads": 2}})
        keys = stage_keys(base)
    assert stage_keys(base.override({f"recipe.{name}": value})) != keys


@pytest.mark.parametrize("name, value", EXPERIMENT_CASES.items())
def test_every_experiment_key_changes_the_stages(keyed, name, value):
    base, keys = keyed
    if name in ("data", "model", "training", "recipe", "reference_training"):
        value = {**getattr(base, name), **value}
    if name == "runs_dir":  # beside the base's runs folder, never in the working directory
        value = str(Path(base.runs_dir).parent / value)
    assert stage_keys(base.override({name: value})) != keys


@pytest.mark.parametrize("name, value", REFUSED_TRAINING.items())
def test_settings_the_pipeline_sets_per_run_are_refused(tmp_path, name, value):
    with pytest.raises(ConfigError, match=rf"training: \['{name}'\] are set per run by the pipeline"):
        tiny_config(tmp_path, training={name: value})


def test_keys_hash_the_resolved_arguments(tmp_path):
    """A default written out is the same setting as a default left out; a changed value is not."""
    plain = tiny_config(tmp_path, training={})
    written = tiny_config(tmp_path, training={"weight_decay": SFTMixConfig.weight_decay})
    other = tiny_config(tmp_path, training={"weight_decay": 0.0})
    key = lambda c: settings_key(c.training_args("ntp", 0, tmp_path))  # noqa: E731
    assert key(plain) == key(written) != key(other)
    assert plain.training != written.training  # the raw sections differ; the keys do not


def test_experiment_help_lists_every_recipe_and_experiment_setting_with_its_default(capsys):
    from sftmix.cli import main

    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(RecipeArguments):
        assert f"recipe.{f.name} (default: {f.default})" in text
    for name in ("mixup_alpha", "mixup_weight", "pairing", "loss_variant"):
        assert f"training.{name} (default: {getattr(SFTMixConfig, name)})" in text
    for name in ("seeds", "generate", "max_new_tokens", "projection"):
        assert f"\n  {name} (default: " in text


def test_older_layout_keys_are_refused_with_their_new_place(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("split_ratio: 0.3\nn_checkpoints: 2\n")
    with pytest.raises(ConfigError, match=r"old.yaml: 'split_ratio' is now recipe.split_ratio; 'n_checkpoints' is "
                                          r"now recipe.n_checkpoints"):
        ExperimentConfig.from_yaml(path)


# ------------------------------------------------------------------- last_turn_only
def trained_tokens(tokenized) -> int:
    return sum(sum(label != -100 for label in labels) for labels in tokenized["labels"])


def test_last_turn_only_reaches_every_stage(tmp_path, files, monkeypatch):
    """The reference run, the scoring, the training runs and the evaluation all see the same tokens:
    with last_turn_only, only the final assistant turn of each chat."""
    from sftmix.pipeline import stages

    seen = {}

    def train_reference(model, tokenizer, tokenized, config, **kw):
        seen["reference"] = tokenized
        return []

    def score_checkpoints(checkpoints, tokenized, **kw):
        seen.setdefault("scoring", tokenized)
        raise StopIteration  # enough: scoring got its tokens

    def train_model(model, tokenizer, tokenized, args, **kw):
        seen["train"] = tokenized

    def evaluate_model(model, tokenizer, examples, *, tokenized=None, **kw):
        seen["eval"] = tokenized
        return {}

    for name, fn in (("train_reference", train_reference), ("score_checkpoints", score_checkpoints),
                     ("train_model", train_model), ("evaluate_model", evaluate_model),
                     ("load_trained", lambda path: None)):
        monkeypatch.setattr(stages, name, fn)
    data = {"dataset": files["chats"], "eval_dataset": files["held"], "max_length": 64, "last_turn_only": True}
    ctx = open_run(tiny_config(tmp_path, data=data), progress=False)
    stages.reference_stage(ctx)
    with pytest.raises(StopIteration):
        stages.dynamics_stage(ctx)
    stages.train_stage(ctx, "ntp", 0, tmp_path / "ntp", None)
    stages.eval_stage(ctx, tmp_path / "ntp")
    tokenizer = build_toy_tokenizer()
    every_turn = tokenize_examples(ctx.train_examples, tokenizer, max_length=64)
    last_turn = tokenize_examples(ctx.train_examples, tokenizer, max_length=64, last_turn_only=True)
    assert trained_tokens(last_turn) < trained_tokens(every_turn)
    for stage in ("reference", "scoring", "train"):
        assert seen[stage]["labels"] == last_turn["labels"], stage
    held = tokenize_examples(ctx.held_out, tokenizer, max_length=64, last_turn_only=True)
    assert seen["eval"]["labels"] == held["labels"]


def test_last_turn_only_in_sftmix_dynamics_and_eval(tmp_path, files, monkeypatch):
    from sftmix.cli import dynamics as dynamics_cli
    from sftmix.cli import eval as eval_cli
    from sftmix.cli import main

    seen = {}
    monkeypatch.setattr(dynamics_cli, "reference_run", lambda run, model, tok, tokenized, cfg, **kw:
                        seen.setdefault("reference", tokenized) and [])
    monkeypatch.setattr(dynamics_cli, "score_reference", lambda run, tokenized, train, **kw:
                        seen.setdefault("scoring", tokenized) and None)
    monkeypatch.setattr(eval_cli, "evaluate_and_save", lambda model, tok, held_out, *, tokenized=None, **kw:
                        seen.setdefault("eval", tokenized) and {})
    tiny = ["--model_name_or_path", "tiny-llama", "--tiny_hidden_size", "16", "--tiny_heads", "2",
            "--max_length", "64", "--last_turn_only", "True"]
    main(["dynamics", "--dataset", files["chats"], "--output_dir", str(tmp_path / "d"), *tiny])
    main(["eval", "--eval_dataset", files["held"], "--no-generate", *tiny])
    expected = {source: tokenize_examples(load_examples(files[source]), build_toy_tokenizer(), max_length=64,
                                          last_turn_only=True) for source in ("chats", "held")}
    for what, source in (("reference", "chats"), ("scoring", "chats"), ("eval", "held")):
        assert seen[what]["labels"] == expected[source]["labels"], what


# ----------------------------------------------------------------- loaded once
def test_a_run_loads_its_tokenizer_once_and_tokenizes_each_set_once(tmp_path, monkeypatch):
    from sftmix.analysis import embed, evaluate
    from sftmix.pipeline import context
    from sftmix.pipeline.experiment import run_experiment

    calls = {"load_tokenizer": 0, "tokenize": 0}

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(context, "load_tokenizer", counting("load_tokenizer", context.load_tokenizer))
    for module in (context, evaluate, embed):
        monkeypatch.setattr(module, "tokenize_examples", counting("tokenize", module.tokenize_examples))
    config = tiny_config(tmp_path, data={"n_train": 32, "n_test": 8, "max_length": 64}, generate=False,
                         training={"num_train_epochs": 1, "per_device_train_batch_size": 8, "logging_steps": 2})
    run_experiment(config, progress=False)
    # reference, dynamics, embeddings, NTP and SFTMix training and evaluation: one tokenizer, two sets
    assert calls == {"load_tokenizer": 1, "tokenize": 2}


def test_the_tokens_are_cached_per_tokenizer(tmp_path):
    config = tiny_config(tmp_path, data={"n_train": 16, "n_test": 4, "max_length": 64},
                         reference_model={"model_name_or_path": "tiny-mistral", "tiny_hidden_size": 16})
    ctx = open_run(config, progress=False)
    assert ctx.tokenizer() is ctx.tokenizer() and ctx.tokenizer(reference=True) is not ctx.tokenizer()
    assert ctx.tokenized("train") is ctx.tokenized("train")
    assert ctx.tokenized("train", reference=True) is not ctx.tokenized("train")
    cell = ctx.with_config(config.override({"training.mixup_alpha": 1.0}))
    assert isinstance(cell, RunContext) and cell.tokenized("train") is ctx.tokenized("train")  # shared cache
    with pytest.raises(ValueError, match="not the data"):
        ctx.with_config(config.override({"data.n_train": 8}))


# ------------------------------------------------------------------ round trip
def test_what_sftmix_data_writes_trains_and_evaluates_unchanged(tmp_path, capsys):
    """``sftmix data --dataset sharegpt --out clean.jsonl`` then ``sftmix train`` / ``sftmix eval`` on it."""
    from sftmix.cli import main

    clean = tmp_path / "clean.jsonl"
    main(["data", "--dataset", "sharegpt", "--max_examples", "12", "--out", str(clean)])
    written = [json.loads(line) for line in clean.read_text().splitlines()]
    assert any(sum(m["role"] == "assistant" for m in row["messages"]) for row in written)  # multi-turn rows
    read = load_examples(str(clean))
    assert read["example_id"] == [r["example_id"] for r in written]
    assert read["messages"] == [r["messages"] for r in written] and read["response"] == [r["response"] for r in written]
    tiny = ["--model_name_or_path", "tiny-llama", "--tiny_hidden_size", "16", "--tiny_heads", "2", "--max_length", "64"]
    main(["train", "--dataset", str(clean), *tiny, "--max_steps", "1", "--per_device_train_batch_size", "4",
          "--output_dir", str(tmp_path / "model"), "--disable_tqdm", "True", "--logging_steps", "1"])
    assert "loss" in capsys.readouterr().out
    out = tmp_path / "eval.json"
    main(["eval", "--model_name_or_path", str(tmp_path / "model"), "--eval_dataset", str(clean), "--max_length", "64",
          "--no-generate", "--out", str(out)])
    kept = tokenize_examples(read, build_toy_tokenizer(), max_length=64)  # those with a response token left
    assert json.loads(out.read_text())["n_examples"] == len(kept) > 0


def test_reference_max_length_without_a_reference_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="recipe.reference_max_length=96 acts only with a reference_model.*"
                                          "has no reference_model"):
        tiny_config(tmp_path, recipe={"reference_max_length": 96})
    with pytest.raises(ConfigError, match="must be >= data.max_length=96"):
        tiny_config(tmp_path, recipe={"reference_max_length": 48},
                    reference_model={"model_name_or_path": "tiny-gemma3"})
