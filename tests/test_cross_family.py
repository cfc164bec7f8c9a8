"""A reference model of another family: tiny-gemma3 (Gemma-like tokenizer) splits tiny-llama's data."""

import json
from pathlib import Path

import pandas as pd
import pytest

from sftmix.analysis.agreement import confidence_agreement
from sftmix.cli import main
from sftmix.config import ModelArguments
from sftmix.data import canonicalize, load_examples, tokenize_examples
from sftmix.errors import DatasetMismatchError, SplitError
from sftmix.io import RunDir
from sftmix.models import load_model, load_tokenizer
from sftmix.pipeline.experiment import run_experiment
from sftmix.train import check_reference_examples
from tests.helpers import tiny_config

GEMMA = {"model_name_or_path": "tiny-gemma3", "tiny_hidden_size": 16, "tiny_heads": 2}


def test_tiny_gemma3_is_gemma3_text_with_a_dominant_tied_head_and_its_own_tokenizer():
    args = ModelArguments(model_name_or_path="tiny-gemma3")
    tok, toy = load_tokenizer(args), load_tokenizer(ModelArguments(model_name_or_path="tiny-llama"))
    model = load_model(args, tok)
    assert type(model).__name__ == "Gemma3ForCausalLM" and model.config.model_type == "gemma3_text"
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight   # tied, like Gemma 3
    head = model.get_input_embeddings().weight.numel()
    share = head / sum(p.numel() for p in model.parameters())
    assert abs(share - 167.8 / 268.1) < 0.01                                             # Gemma 3 270M's share
    assert {"<start_of_turn>", "<end_of_turn>"} <= set(tok.get_vocab()) and len(tok) == model.config.vocab_size
    assert tok("Hi", add_special_tokens=False)["input_ids"] != toy("Hi", add_special_tokens=False)["input_ids"]
    assert set(model.config.layer_types) == {"sliding_attention", "full_attention"}


def test_confidence_agreement_on_literal_tables():
    a = pd.DataFrame({"example_id": ["a", "b", "c", "d"], "confidence": [4.0, 3.0, 2.0, 1.0]})
    same = confidence_agreement(a, a.iloc[::-1])
    assert same["spearman"] == pytest.approx(1.0) and same["confident_overlap"] == 1.0
    flipped = confidence_agreement(a, a.assign(confidence=[1.0, 2.0, 3.0, 4.0]))
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["confident_overlap"] == 0.0
    half = confidence_agreement(a, a.assign(confidence=[4.0, 1.0, 3.0, 2.0]))   # {a, b} vs {a, c}
    assert half["confident_overlap"] == 0.5 and half["chance_overlap"] == 0.5
    assert half["spearman"] == pytest.approx(0.4)
    with pytest.raises(DatasetMismatchError, match="different examples"):
        confidence_agreement(a, a.assign(example_id=["a", "b", "c", "e"]))


def test_a_reference_of_another_family_splits_exactly_the_training_ids(tmp_path):
    config = tiny_config(tmp_path, name="cross", reference_model=GEMMA, embeddings=False,
                         data={"n_train": 96, "n_test": 16, "max_length": 192})  # no answer cut by either
    results = run_experiment(config, progress=False)
    rd = RunDir(config.run_dir)
    split = json.loads(rd.split.read_text())
    trained = set(load_examples("builtin", split="train", n_train=96, n_test=16)["example_id"])
    assert set(split["confident"]) | set(split["unconfident"]) == trained
    last = json.loads(rd.checkpoints.read_text())[-1]
    assert json.loads((rd.reference / last.rsplit("/", 1)[-1] / "config.json").read_text())["model_type"] \
        == "gemma3_text"
    assert results["dynamics"]["reference_model"] == "tiny-gemma3"
    assert "Reference model (its training dynamics split the data): tiny-gemma3; trained model: tiny-llama" \
        in rd.results_md.read_text()
    assert set(results["per_seed"]) == {"ntp", "sftmix"}


def test_a_reference_that_keeps_other_examples_exits_2_before_anything_trains(tmp_path, capsys):
    examples = canonicalize([{"prompt": "q" * 20, "response": "a" * 5}], source="test")
    toy = load_tokenizer(ModelArguments(model_name_or_path="tiny-llama"))
    gemma = load_tokenizer(ModelArguments(model_name_or_path="tiny-gemma3", chat_template="gemma"))
    # One token per character: the toy prompt "<|user|>q..q<|end|><|assistant|>" is 23 tokens, the Gemma one 36.
    def both(max_length):
        return [tokenize_examples(examples, tok, max_length=max_length) for tok in (toy, gemma)]

    check_reference_examples(*both(40), max_length=40)
    with pytest.raises(SplitError, match="tiny-llama keeps 1 training examples that tiny-gemma3 drops at max_len"):
        check_reference_examples(*both(25), max_length=25, names=("tiny-llama", "tiny-gemma3"))
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {k:02d} " + "q" * 8, "response": "a" * 5}) + "\n"
                            for k in range(8)))
    config = tmp_path / "cross.yaml"
    config.write_text(json.dumps({
        "name": "cross", "runs_dir": str(tmp_path), "seeds": [0], "model": {"model_name_or_path": "tiny-llama"},
        "reference_model": {**GEMMA, "chat_template": "gemma"}, "data": {"dataset": str(data), "max_length": 25},
        "figures": False, "embeddings": False}))
    with pytest.raises(SystemExit) as exit_:
        main(["experiment", str(config)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "tiny-llama keeps 8 training examples that tiny-gemma3 drops at max_length=25" in err
    assert not any((tmp_path / "cross" / "reference").glob("checkpoint-*"))


def test_a_run_directory_keeps_weights_once_and_never_a_reference_optimizer_state(tmp_path):
    """The run keeps the scores, the last reference weights (hard-linked as the NTP run's) and the SFTMix
    weights: no optimizer state, no checkpoint of the finished training runs, no second copy."""
    config = tiny_config(tmp_path, name="lean", model=GEMMA, reference_training={}, embeddings=False,
                         data={"n_train": 32, "n_test": 8, "max_length": 192})
    assert config.reference_is_ntp_run
    saved = []
    real_save = __import__("transformers").Trainer._save_checkpoint

    def spy(self, model, trial):  # every checkpoint the Trainer writes, with what it holds
        real_save(self, model, trial)
        folder = max(Path(self.args.output_dir).glob("checkpoint-*"), key=lambda p: p.stat().st_mtime)
        saved.append((self.args.output_dir, folder.name, sorted(p.name for p in folder.iterdir())))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("transformers.Trainer._save_checkpoint", spy)
        run_experiment(config, progress=False)
    reference = [files for out, _, files in saved if out.endswith("reference")]
    assert reference and not any("optimizer.pt" in files for files in reference)
    # SFTMix, 2 epochs of 2 steps: a resumable checkpoint after epoch 1 (with its optimizer), none at the end.
    assert [(name, "optimizer.pt" in files) for out, name, files in saved if out.endswith("seed0")] \
        == [("checkpoint-2", True)]
    rd = RunDir(config.run_dir)
    weights = [p for p in rd.root.rglob("*.safetensors")]
    assert len(weights) == 3 and len({p.stat().st_ino for p in weights}) == 2   # ntp = reference, linked
    assert not list(rd.root.rglob("optimizer.pt")) and not list(rd.root.glob("*/seed0/checkpoint-*"))


def test_a_reference_with_its_own_token_budget_keeps_every_training_example(tmp_path):
    """recipe.reference_max_length: the other tokenizer gets more tokens; the examples stay max_length's."""
    from sftmix.pipeline.context import open_run
    from sftmix.pipeline.experiment_config import ExperimentConfig

    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {k:02d} " + "q" * 8, "response": "a" * 5}) + "\n"
                            for k in range(8)))
    spec = {"name": "cross", "runs_dir": str(tmp_path), "seeds": [0], "model": {"model_name_or_path": "tiny-llama"},
            "reference_model": {**GEMMA, "chat_template": "gemma"}, "data": {"dataset": str(data), "max_length": 25},
            "figures": False, "embeddings": False}
    ctx = open_run(ExperimentConfig.from_dict({**spec, "recipe": {"reference_max_length": 40}}), progress=False)
    trained, reference = ctx.tokenized("train", alone=True), ctx.tokenized("train", reference=True, alone=True)
    check_reference_examples(trained, reference, max_length=40)
    assert sorted(reference["example_id"]) == sorted(trained["example_id"]) and len(trained) == 8
    assert max(len(ids) for ids in reference["input_ids"]) > 25 >= max(len(ids) for ids in trained["input_ids"])
