"""Reliability: non-finite losses, SIGKILL during scoring, determinism, unsafe formats, bad settings.

Bad data files, split files of another dataset and dynamics tables of another dataset
are covered in test_data.py, test_trainer.py and test_dynamics.py.

``python -m tests.test_reliability RUNS_DIR NAME`` runs :func:`small_config` (the child
process killed by the SIGKILL test).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from sftmix.config import ModelArguments, SFTMixConfig
from sftmix.data import load_examples, tokenize_examples
from sftmix.pipeline.experiment import run_experiment
from sftmix.pipeline.experiment_config import ExperimentConfig
from sftmix.toy import build_tiny_model
from sftmix.train.run import train_model

ROOT = Path(__file__).resolve().parents[1]
N_CHECKPOINTS = 4


def small_config(runs_dir, name="r") -> ExperimentConfig:
    """Reference run, scoring of 4 checkpoints, split, and one SFTMix step (no eval)."""
    return ExperimentConfig(
        name=name, runs_dir=str(runs_dir), seeds=[0], methods=["sftmix"],
        model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": 16, "tiny_heads": 2},
        data={"n_train": 640, "n_test": 0, "max_length": 96},
        training={"max_steps": 1, "per_device_train_batch_size": 16, "learning_rate": 3e-3, "logging_steps": 1},
        reference_training={"num_train_epochs": 1, "max_steps": -1, "logging_steps": 100},
        recipe={"n_checkpoints": N_CHECKPOINTS}, embeddings=False, figures=False, generate=False)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted run: the baseline for the determinism and resume tests."""
    config = small_config(tmp_path_factory.mktemp("reliability") / "a")
    run_experiment(config, progress=False)
    return config.run_dir


def _table(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "dynamics.parquet")


# ------------------------------------------------------------------ non-finite loss
def _trainer_config(out, **kw):
    defaults = dict(output_dir=str(out), per_device_train_batch_size=4, num_train_epochs=1, use_cpu=True,
                    disable_tqdm=True, warmup_ratio=0.0, seed=0, report_to=[])
    return SFTMixConfig(**{**defaults, **kw})


def test_huge_learning_rate_stops_naming_the_step_and_saves_the_batch(tokenizer, suite_examples, tmp_path):
    data = tokenize_examples(suite_examples[0].select(range(48)), tokenizer, max_length=96)
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=16, num_heads=2)
    with pytest.raises(FloatingPointError, match=r"non-finite .* at step \d+") as err:
        train_model(model, tokenizer, data, _trainer_config(tmp_path, learning_rate=1e4, logging_steps=3,
                                                            per_device_train_batch_size=8))
    debug = json.loads((tmp_path / "nonfinite_loss.json").read_text())
    first = debug["first_nonfinite_batch"]
    assert f"at step {first['step']}" in str(err.value) and str(tmp_path / "nonfinite_loss.json") in str(err.value)
    assert len(first["example_ids"]) == 8 and set(first["example_ids"]) <= set(data["example_id"])
    assert first["example_ids"] == [data["example_id"][i] for i in first["example_index"]]
    assert debug["log_history"] and debug["trainer_state"]["global_step"] == debug["step"]
    assert not (tmp_path / "model.safetensors").exists()                  # nothing saved as if it had worked


def test_injected_nan_names_its_batch_and_no_poisoned_checkpoint_is_saved(tokenizer, tmp_path):
    # 24 examples; only "ex13" contains "~", whose embedding is set to NaN.
    rows = [{"example_id": f"ex{i}", "prompt": f"Repeat {'~' if i == 13 else ''}word {i}",
             "completion": f"word {i}"} for i in range(24)]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = tokenize_examples(load_examples(str(path)), tokenizer, max_length=64)
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=16, num_heads=2)
    with torch.no_grad():
        model.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids("~")] = float("nan")
    out = tmp_path / "run"
    # Logging is rare, a checkpoint is saved every step: the check before saving must catch it.
    with pytest.raises(FloatingPointError, match=r"before saving the checkpoint of step \d+") as err:
        train_model(model, tokenizer, data, _trainer_config(out, learning_rate=1e-3, logging_steps=1000,
                                                            save_strategy="steps", save_steps=1))
    first = json.loads((out / "nonfinite_loss.json").read_text())["first_nonfinite_batch"]
    assert "ex13" in first["example_ids"] and "ex13" in str(err.value)
    bad_step = first["step"]
    assert f"checkpoint of step {bad_step}" in str(err.value)
    assert not (out / f"checkpoint-{bad_step}").exists()                   # the NaN weights were not saved
    assert sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*")) == list(range(1, bad_step))


# ------------------------------------------------------------- SIGKILL during scoring
def test_sigkill_during_checkpoint_scoring_resumes_without_rescoring(reference_run, tmp_path, monkeypatch):
    import sftmix.dynamics.scoring as scoring

    config = small_config(tmp_path, name="killed")
    scores = config.run_dir / "reference" / "scores"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.test_reliability", str(tmp_path), "killed"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(scores.glob("*.parquet")):
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-3000:]
    finished = {p.name: p.stat().st_mtime_ns for p in scores.glob("*.parquet")}
    assert 1 <= len(finished) < N_CHECKPOINTS, f"killed too late to test the resume: {sorted(finished)}"
    assert not (config.run_dir / "stages" / "dynamics.json").exists()

    scored = []
    original = scoring.score_model
    monkeypatch.setattr(scoring, "score_model", lambda *a, name, **kw: scored.append(name) or
                        original(*a, name=name, **kw))
    run_experiment(config, progress=False)

    all_names = [Path(c).name for c in json.loads((config.run_dir / "reference" / "checkpoints.json").read_text())]
    assert sorted(scored) == sorted(n for n in all_names if f"{n}.parquet" not in finished)   # only the rest
    assert {n: (scores / n).stat().st_mtime_ns for n in finished} == finished           # untouched
    pd.testing.assert_frame_equal(_table(config.run_dir), _table(reference_run), check_exact=True)
    assert (config.run_dir / "split.json").read_text() == (reference_run / "split.json").read_text()
    assert not list(config.run_dir.rglob("*.tmp*"))


def test_resume_skips_half_saved_checkpoints_stale_runs_and_temp_files(tmp_path):
    from sftmix.io import remove_temp_files
    from sftmix.pipeline.stages import claim_train_dir as _claim_train_dir
    from sftmix.train.run import latest_checkpoint

    out = tmp_path / "sftmix" / "seed0"
    for step, state in ((3, '{"global_step": 3}'), (6, None), (10, '{"global_st')):  # 6, 10: killed mid-save
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"w")
        if state is not None:
            (out / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert latest_checkpoint(out) == str(out / "checkpoint-3")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
    _claim_train_dir(out, "key-a")                                      # same configuration: kept
    assert latest_checkpoint(out) == str(out / "checkpoint-3")
    _claim_train_dir(out, "key-a")
    assert (out / "checkpoint-3").exists()
    _claim_train_dir(out, "key-b")                                      # changed: not resumed from
    assert latest_checkpoint(out) is None

    leftovers = [tmp_path / ".dynamics.parquet.123.tmp", out / ".eval.json.tmp456", tmp_path / ".results.md.tmp",
                 tmp_path / ".embeddings.tmp.npy"]
    for f in leftovers:
        f.write_text("half")
    (tmp_path / "keep.json").write_text("{}")
    remove_temp_files(tmp_path)
    assert not any(f.exists() for f in leftovers) and (tmp_path / "keep.json").exists()


# ------------------------------------------------------------------------ determinism
def test_same_seed_and_config_give_bit_identical_dynamics_and_split(reference_run, tmp_path):
    config = small_config(tmp_path, name=reference_run.name)
    run_experiment(config, progress=False)
    pd.testing.assert_frame_equal(_table(config.run_dir), _table(reference_run), check_exact=True)
    assert (config.run_dir / "split.json").read_text() == (reference_run / "split.json").read_text()
    last = Path(json.loads((reference_run / "reference" / "checkpoints.json").read_text())[-1]).name
    for run in (config.run_dir, reference_run):
        assert (run / "reference" / last / "model.safetensors").exists()
    assert (config.run_dir / "reference" / last / "model.safetensors").read_bytes() == \
        (reference_run / "reference" / last / "model.safetensors").read_bytes()


# --------------------------------------------------------------------------- security
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


def test_no_remote_code_and_no_pickled_files_in_a_run(reference_run):
    assert ModelArguments().trust_remote_code is False
    trained = reference_run / "sftmix" / "seed0"
    assert (trained / "model.safetensors").exists()
    assert (trained / "train_config.json").exists()                        # the arguments, as JSON
    pickled = [p for p in reference_run.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    assert not pickled, pickled


UNSAFE = {
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
    "pickle": re.compile(r"\b(c?pickle|dill|marshal|shelve)\b"),
    "eval(": re.compile(r"(?<![\w.])eval\("),
    "exec(": re.compile(r"(?<![\w.])exec\("),
    "yaml.load": re.compile(r"yaml\.(load|unsafe_load)\("),
    "trust_remote_code=True": re.compile(r"trust_remote_code\s*=\s*True"),
}


def test_library_sources_use_no_unsafe_deserialisation_or_eval():
    """A guard for future changes: none of these in sftmix/ (model.eval() is fine)."""
    found = []
    for path in sorted((ROOT / "sftmix").rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for what, pattern in UNSAFE.items():
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{lineno}: {what}: {line.strip()}")
    assert not found, "\n".join(found)


# ------------------------------------------------------------------------ bad settings
def test_out_of_range_settings_through_the_cli_exit_nonzero_with_the_message(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrecipe:\n  split_ratio: 1.5\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "sftmix.cli", "experiment", str(bad), "--runs-dir",
                           str(tmp_path / "runs")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode != 0
    assert "split_ratio must lie strictly between 0 and 1, got 1.5" in done.stderr
    assert not (tmp_path / "runs").exists()                                 # rejected before any work

    from sftmix.cli import main

    for argv, message in ((["--mixup_alpha", "-1"], "mixup_alpha must be > 0"),
                          (["--max_length", "1"], "max_length must be >= 2"),
                          (["--noise", "1.5"], "noise must be in [0, 1)"),
                          (["--method", "sftmix"], "needs split_file")):
        with pytest.raises(SystemExit) as exit_info:  # a user error: one line, exit code 2
            main(["train", *argv, "--output_dir", str(tmp_path / "t")])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    for spec, message in (({"methods": []}, "methods must name at least one"),
                          ({"seeds": [0, 0]}, "seeds must be distinct"),
                          ({"recipe": {"split_metric": "loss"}}, "split_metric='loss'")):
        with pytest.raises(ValueError, match=re.escape(message)):
            ExperimentConfig(**spec)


if __name__ == "__main__":
    torch.set_num_threads(1)
    run_experiment(small_config(sys.argv[1], sys.argv[2]), progress=False)
