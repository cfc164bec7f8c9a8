"""Tests for sftmix.dynamics.scoring on tiny models: scoring vs the model's own loss, resume, the
checkpoint schedule, online recording vs scoring, and the dynamics of a noisy task suite."""
import os

import numpy as np
import pytest
import torch

import sftmix.dynamics.scoring as scoring
from sftmix.config import SFTMixConfig
from sftmix.data import load_examples, tokenize_examples
from sftmix.dynamics import compute_dynamics, read_checkpoint_frames
from sftmix.dynamics.scoring import score_checkpoints, score_model
from sftmix.toy import build_tiny_model
from sftmix.train.callbacks import CheckpointSchedule, DynamicsRecorder, checkpoint_steps
from sftmix.train.run import train_reference


@pytest.fixture(scope="module")
def examples():
    return load_examples("builtin", n_train=64, n_test=1, seed=3)


@pytest.fixture(scope="module")
def tokenized(tokenizer, examples):
    return tokenize_examples(examples, tokenizer, max_length=96)


def _model(tokenizer, seed=0):
    return build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, seed=seed)


def _config(out, **kw):
    kw = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "disable_tqdm": True, "use_cpu": True,
          "logging_steps": 1000, "dataloader_num_workers": 0, **kw}
    return SFTMixConfig(output_dir=str(out), **kw)


# ---------------------------------------------------------------------- scoring
@pytest.mark.parametrize("tokens, column", [("trained", "labels"), ("content", "content_labels")])
def test_scoring_matches_the_models_own_loss(tokenizer, tokenized, tokens, column):
    model = _model(tokenizer).train()
    frame = score_model(model, tokenized, batch_size=16, progress=False, tokens=tokens)
    assert frame.attrs["tokens"] == tokens
    assert model.training  # scoring runs in eval mode and restores the caller's mode
    assert list(frame["example_id"]) == list(tokenized["example_id"])
    model.eval()
    with torch.no_grad():
        for i in range(0, len(tokenized), 7):
            row = tokenized[i]
            labels = torch.tensor([row[column]])
            out = model(input_ids=torch.tensor([row["input_ids"]]), labels=labels)
            assert frame["ppl"][i] == pytest.approx(float(torch.exp(out.loss)), rel=1e-5)
            assert frame["nll"][i] == pytest.approx(float(out.loss), rel=1e-5)
            gold, mask = labels[0, 1:], labels[0, 1:] != -100
            logp = out.logits[0, :-1][mask].log_softmax(-1)
            assert frame["n_tokens"][i] == int(mask.sum())
            assert frame["prob"][i] == pytest.approx(float(logp.gather(1, gold[mask, None]).exp().mean()), rel=1e-5)
            assert frame["acc"][i] == pytest.approx(float((logp.argmax(-1) == gold[mask]).float().mean()))
    np.testing.assert_allclose(frame["gprob"], 1 / frame["ppl"], rtol=1e-12)
    assert ((frame["prob"] >= frame["gprob"] - 1e-12) & (frame["acc"].between(0, 1))).all()  # AM >= GM
    # Batching and output-head chunking change nothing.
    other = score_model(model, tokenized, batch_size=5, chunk_size=7, progress=False, tokens=tokens)
    np.testing.assert_allclose(other[["ppl", "prob", "acc"]], frame[["ppl", "prob", "acc"]], rtol=1e-5)


def test_resume_recomputes_only_missing_or_foreign_files(tokenizer, tokenized, tmp_path, monkeypatch):
    dirs = []
    for seed in range(3):
        d = tmp_path / f"checkpoint-{seed + 1}"
        _model(tokenizer, seed).save_pretrained(d)
        dirs.append(d)
    loads = []
    original = scoring._load_checkpoint
    monkeypatch.setattr(scoring, "_load_checkpoint", lambda path, device: loads.append(path) or original(path, device))
    out = tmp_path / "scores"
    tokenized = tokenized.select(range(24))
    first = score_checkpoints(dirs, tokenized, out_dir=out, progress=False)
    assert len(loads) == 3 and sorted(p.name for p in out.iterdir()) == [f"checkpoint-{k}.parquet" for k in (1, 2, 3)]
    assert [f.attrs["step"] for f in first] == [1, 2, 3]
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    os.remove(out / "checkpoint-2.parquet")
    loads.clear()
    again = score_checkpoints(dirs, tokenized, out_dir=out, progress=False)
    assert [p.name for p in loads] == ["checkpoint-2"]
    for name in ("checkpoint-1.parquet", "checkpoint-3.parquet"):
        assert (out / name).stat().st_mtime_ns == mtimes[name]
    for a, b in zip(first, again):
        np.testing.assert_allclose(a["ppl"], b["ppl"], rtol=1e-6)

    loads.clear()  # another dataset: every file is recomputed
    subset = tokenized.select(range(10))
    frames = score_checkpoints(dirs, subset, out_dir=out, progress=False)
    assert len(loads) == 3 and all(len(f) == 10 for f in frames)


def test_checkpoint_names_must_be_given_and_unique(tokenizer, tokenized, tmp_path):
    with pytest.raises(TypeError, match="name"):
        score_checkpoints([_model(tokenizer)], tokenized, out_dir=tmp_path)
    with pytest.raises(ValueError, match="unique"):
        score_checkpoints([("a", _model(tokenizer)), ("a", _model(tokenizer))], tokenized, out_dir=tmp_path)


# ----------------------------------------------------- schedule, reference run
def test_checkpoint_steps_are_spread_evenly():
    assert checkpoint_steps(9, 3) == [3, 6, 9]
    assert checkpoint_steps(10, 3) == [3, 7, 10]
    assert checkpoint_steps(5, 1) == [5]
    assert checkpoint_steps(4, 4) == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        checkpoint_steps(2, 3)
    with pytest.raises(ValueError):
        CheckpointSchedule(3, steps=[1, 2])


@pytest.fixture(scope="module")
def frozen_run(tokenizer, tokenized, tmp_path_factory):
    """A reference run that cannot move (lr=0): 64 examples, batch 8, one epoch = 8 steps."""
    out = tmp_path_factory.mktemp("reference")
    model = _model(tokenizer)
    every3 = DynamicsRecorder(interval=3)
    dirs = train_reference(model, tokenizer, tokenized, _config(out, learning_rate=0.0, seed=1), n_checkpoints=3,
                           out_dir=out, record_online=True, callbacks=[every3])
    return out, model, dirs, every3


def test_reference_run_saves_exactly_c_checkpoints(frozen_run):
    out, _, dirs, _ = frozen_run
    assert [os.path.basename(d) for d in dirs] == ["checkpoint-3", "checkpoint-5", "checkpoint-8"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-5", "checkpoint-8"]
    assert [scoring.checkpoint_step(d) for d in dirs] == [3, 5, 8]


def test_online_recording_matches_scoring_on_a_frozen_model(frozen_run, tokenized, tmp_path):
    out, model, dirs, _ = frozen_run
    online = read_checkpoint_frames(out / "online")
    assert [f.attrs["name"] for f in online] == ["epoch-1"] and online[0].attrs["source"] == "online"
    scored = score_checkpoints(dirs[-1:], tokenized, out_dir=tmp_path, progress=False)[0]
    assert list(online[0]["example_id"]) == list(scored["example_id"])
    for column in ("ppl", "prob", "gprob", "acc", "n_tokens"):
        np.testing.assert_allclose(online[0][column], scored[column], rtol=1e-4, err_msg=column)
    # Same file format: the dynamics table takes either.
    table = compute_dynamics(online + [scored])
    np.testing.assert_allclose(table["ppl_0"], table["ppl_1"], rtol=1e-4)


def test_interval_recording_leaves_unseen_examples_nan(frozen_run):
    _, _, _, every3 = frozen_run
    frames = every3.checkpoints
    assert [f.attrs["name"] for f in frames] == ["step-3", "step-6", "step-8"]  # last window closed at the end
    seen = [f["ppl"].notna().to_numpy() for f in frames]
    assert [int(s.sum()) for s in seen] == [24, 24, 16]  # 3, 3 and 2 batches of 8
    assert (np.sum(seen, axis=0) == 1).all()             # each example seen once in the epoch
    table = compute_dynamics(frames)
    assert table["confidence"].notna().all() and (table["variability"] == 0).all()


# ---------------------------------------------------------- a real property
# Tasks whose noise a tiny model notices within a few epochs (near-miss counts, a list
# element that is not the maximum); noisy copy or look-up answers look as plausible as
# clean ones to it. Measured with this setup (n_train=600, noise=0.3, 4 epochs), seeds 0-4
# (suite and model seed alike; the test uses seed 0):
#   clean - noisy mean confidence   1.16 / 0.85 / 1.32 / 0.92 / 0.62   (clean about -3)
#   clean - noisy confidence_prob   0.083 / 0.076 / 0.122 / 0.078 / 0.059
#   max - min per-task confidence   3.73 / 3.00 / 3.31 / 2.83 / 4.48
# The margins below are about half the smallest value seen.
NOISE_TASKS = ["count_letter", "vowel_count", "max_of_list"]


def test_noisy_examples_are_less_confident_and_tasks_differ(tokenizer, tmp_path):
    ex = load_examples("builtin", n_train=600, n_test=1, noise=0.3, seed=0, tasks=NOISE_TASKS)
    data = tokenize_examples(ex, tokenizer, max_length=96)
    model = build_tiny_model("llama", tokenizer=tokenizer, seed=0)  # hidden 64, 2 layers
    config = _config(tmp_path, num_train_epochs=4, per_device_train_batch_size=16, learning_rate=5e-3, seed=0)
    dirs = train_reference(model, tokenizer, data, config, n_checkpoints=3, out_dir=tmp_path)
    table = compute_dynamics(score_checkpoints(dirs, data, out_dir=tmp_path / "scores", progress=False), ex)
    clean, noisy = table[~table["noisy"]], table[table["noisy"]]
    assert clean["confidence"].mean() - noisy["confidence"].mean() > 0.3
    assert clean["confidence_prob"].mean() - noisy["confidence_prob"].mean() > 0.03
    by_task = table.groupby("task")["confidence"].mean()
    assert by_task.max() - by_task.min() > 1.4, by_task
