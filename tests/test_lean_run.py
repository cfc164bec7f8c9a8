"""A lean run directory: ``keep_weights: reference`` keeps the reference's weights only, stores every file once,
trains nothing again on a rerun, gives the default run's results, and stops a step that needs removed weights."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from sftmix.config import ModelArguments
from sftmix.errors import ConfigError
from sftmix.io import WEIGHTS_REMOVED_FILE, RunDir, link_same_files, unlink_shared
from sftmix.models import load_model
from sftmix.pipeline.claims import confidence_spread
from sftmix.pipeline.experiment import run_experiment
from sftmix.pipeline.stages import claim_train_dir, load_trained
from sftmix.pipeline.weights import remove_trained_weights
from tests.helpers import tiny_config

GEMMA = {"model_name_or_path": "tiny-gemma3", "tiny_hidden_size": 16, "tiny_heads": 2}


def lean_config(runs: Path, keep_weights: str, name: str):
    """32 chats, 2 epochs, one seed; the NTP run of seed 0 is the reference run (as in the Gemma study)."""
    return tiny_config(runs, name=name, model=GEMMA, reference_training={}, embeddings=False,
                       data={"n_train": 32, "n_test": 8, "max_length": 192}, keep_weights=keep_weights)


def stored_bytes(root: Path) -> int:
    """Bytes a folder takes: every file once, a hard link counted once (what ``du`` counts)."""
    seen = {}
    for p in root.rglob("*"):
        if p.is_file():
            seen[p.stat().st_ino] = p.stat().st_size
    return sum(seen.values())


def no_trainer(*args, **kwargs):
    raise AssertionError("a rerun trained a model again")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    default, lean = lean_config(folder, "all", "default"), lean_config(folder, "reference", "lean")
    run_experiment(default, progress=False)
    run_experiment(lean, progress=False)
    return default, lean


def test_a_lean_run_keeps_the_reference_weights_and_no_trained_weights(runs):
    _, lean = runs
    rd = RunDir(lean.run_dir)
    last = Path(json.loads(rd.checkpoints.read_text())[-1])
    weights = sorted(p.relative_to(rd.root) for p in rd.root.rglob("*.safetensors"))
    assert weights == [Path("ntp/seed0/model.safetensors"), last.relative_to(rd.root) / "model.safetensors"]
    assert (rd.train("ntp", 0) / "model.safetensors").samefile(last / "model.safetensors")  # the reference's
    sftmix = rd.train("sftmix", 0)
    kept = {p.name for p in sftmix.iterdir()}
    assert {"eval.json", "generations.json", "log_history.json", "train_config.json", WEIGHTS_REMOVED_FILE} <= kept
    removed = json.loads((sftmix / WEIGHTS_REMOVED_FILE).read_text())
    assert removed["removed"] == ["model.safetensors"] and removed["bytes_freed"] > 0


def test_a_lean_run_gives_the_default_runs_results_in_less_space(runs):
    default, lean = (RunDir(c.run_dir) for c in runs)
    for method in ("ntp", "sftmix"):
        assert json.loads(lean.eval_file(method, 0).read_text()) == json.loads(default.eval_file(method, 0).read_text())
    assert lean.split.read_text() == default.split.read_text()
    sftmix_weights = (default.train("sftmix", 0) / "model.safetensors").stat().st_size
    saved = stored_bytes(default.root) - stored_bytes(lean.root)
    assert sftmix_weights - 2000 < saved <= sftmix_weights   # the SFTMix weights, less a few small files


def test_every_large_file_of_a_run_is_stored_once(runs):
    """The tokenizer and config saved beside every model (33 MB of tokenizer.json for Gemma 3) are links."""
    for config in runs:
        by_content: dict[str, set[int]] = {}
        for p in Path(config.run_dir).rglob("*"):
            if p.is_file() and p.stat().st_size >= 4096:
                by_content.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), set()).add(p.stat().st_ino)
        assert all(len(inodes) == 1 for inodes in by_content.values())
        tokenizers = list(Path(config.run_dir).rglob("tokenizer.json"))
        assert len(tokenizers) == 4 and len({p.stat().st_ino for p in tokenizers}) == 1  # 2 checkpoints, 2 runs


def test_a_rerun_trains_nothing_and_a_step_that_needs_removed_weights_names_the_setting(runs, monkeypatch):
    _, lean = runs
    monkeypatch.setattr("transformers.Trainer.train", no_trainer)
    before = json.loads(RunDir(lean.run_dir).results_json.read_text())
    after = run_experiment(lean, progress=False)
    assert after["per_seed"] == before["per_seed"] and after["summary"] == before["summary"]
    sftmix = RunDir(lean.run_dir).train("sftmix", 0)
    with pytest.raises(ConfigError, match=r"seed0: its trained weights were removed .*keep_weights: reference"):
        load_trained(sftmix)
    with pytest.raises(ConfigError, match=r"sftmix/seed0: its trained weights were removed .*keep_weights"):
        confidence_spread(lean)   # never a row silently left out
    with pytest.raises(ConfigError, match="keep_weights: reference"):   # `sftmix eval --model_name_or_path` on it
        load_model(ModelArguments(model_name_or_path=str(sftmix)))


def test_a_changed_eval_stops_and_keep_weights_all_trains_the_removed_weights_again(runs, tmp_path):
    default, _ = runs
    lean = lean_config(tmp_path, "reference", "lean")
    run_experiment(lean, progress=False)
    with pytest.raises(ConfigError, match="keep_weights: reference"):
        run_experiment(lean.override({"max_new_tokens": 8}), progress=False)   # eval again: needs the weights
    run_experiment(lean.override({"keep_weights": "all"}), progress=False)
    folder, original = RunDir(lean.run_dir).train("sftmix", 0), RunDir(default.run_dir).train("sftmix", 0)
    assert not (folder / WEIGHTS_REMOVED_FILE).exists()
    assert (folder / "model.safetensors").read_bytes() == (original / "model.safetensors").read_bytes()


def test_removing_trained_weights_leaves_a_checkpoint_being_trained(tmp_path):
    (tmp_path / "checkpoint-2").mkdir()
    for name in ("model.safetensors", "checkpoint-2/model.safetensors", "log_history.json"):
        (tmp_path / name).write_bytes(b"x" * 10)
    assert remove_trained_weights(tmp_path) == 10
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == \
        ["checkpoint-2/model.safetensors", "log_history.json", WEIGHTS_REMOVED_FILE]


def test_linked_files_are_unlinked_before_a_run_saves_into_its_folder_again(tmp_path):
    """A tokenizer's save_pretrained writes in place: into a hard link it would change the reference's copy."""
    source, run = tmp_path / "reference", tmp_path / "run"
    source.mkdir(), run.mkdir()
    (source / "tokenizer.json").write_text("same")
    (source / "config.json").write_text("reference")
    (run / "tokenizer.json").write_text("same")
    (run / "config.json").write_text("run")
    assert link_same_files(run, source) == 4
    assert (run / "tokenizer.json").samefile(source / "tokenizer.json")
    assert not (run / "config.json").samefile(source / "config.json")   # other bytes: its own file
    claim_train_dir(run, "key")
    assert not (run / "tokenizer.json").exists() and (source / "tokenizer.json").read_text() == "same"
    assert os.stat(source / "tokenizer.json").st_nlink == 1
    unlink_shared(run)   # nothing shared left: nothing more goes
    assert (run / "config.json").read_text() == "run"
