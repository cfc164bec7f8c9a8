"""The shipped tiny base (tiny-base), the world corpus it read, and `sftmix pretrain`."""

import json
import random
import re
import shutil
import string
import subprocess
import sys

import pytest
import torch

from sftmix.config import ModelArguments
from sftmix.models import load_model_and_tokenizer
from sftmix.toy import base as base_module
from sftmix.toy.base import BASE_DIR, base_model_dir, base_record, sha256_of
from sftmix.toy.pretrain import PretrainConfig, packed_batch, pretrain, probe_world
from sftmix.toy.tasks import TASKS
from sftmix.toy.world import QUESTIONS, STATEMENTS, statement, world_text


def test_shipped_weights_match_recorded_checksum():
    recorded = (BASE_DIR / "SHA256").read_text().split()[0]
    assert sha256_of(BASE_DIR / "model.safetensors") == recorded


def test_tiny_base_loads_offline_by_name(tokenizer):
    model, tok = load_model_and_tokenizer(ModelArguments(model_name_or_path="tiny-base"))
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tok) == len(tokenizer)
    # Pretrained, not random: it continues a world statement correctly.
    ids = tok("<s>The capital of France is", add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert tok.decode(out[0, ids.shape[1]:]).startswith(" Paris")


def test_damaged_weights_fail_loudly(tmp_path, monkeypatch):
    copy = tmp_path / "base"
    shutil.copytree(BASE_DIR, copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    monkeypatch.setattr(base_module, "BASE_DIR", copy)
    with pytest.raises(ValueError, match="SHA-256"):
        base_model_dir()


def test_record_says_how_the_weights_were_made():
    record = base_record()
    for key in ("command", "config", "step", "wall_seconds", "tokens_seen", "final_loss", "probe"):
        assert key in record, key
    assert record["step"] == record["config"]["steps"]
    assert record["probe"][-1]["mean"] > 0.5  # the base knows most of its world


def test_world_covers_every_family_and_level():
    assert set(STATEMENTS) == set(TASKS) == set(QUESTIONS)
    for name, family in TASKS.items():
        assert set(STATEMENTS[name]) == set(family.levels) == set(QUESTIONS[name])
        for d, level in family.levels.items():
            answer = level.render(level.items[0])[1]
            assert any(answer in statement(name, d, 0, p) for p in range(4)), (name, d)


def test_world_text_never_uses_the_suites_instruction_wordings():
    """A suite prompt must be new to the base as a question: no template appears in its text."""
    patterns = []
    for family in TASKS.values():
        for level in family.levels.values():
            for template in level.templates:
                parts = [re.escape(literal) + (r"\S+(?:, \S+)*" if field is not None else "")
                         for literal, field, *_ in string.Formatter().parse(template)]
                patterns.append(re.compile("".join(parts)))
    stream = world_text(seed=3, qa_fraction=0.5)
    text = "\n".join(next(stream) for _ in range(20_000))
    found = sorted({p.pattern for p in patterns if p.search(text)})
    assert not found, f"suite instruction wordings in the world text: {found[:5]}"
    assert "<|user|>" not in text and "<|assistant|>" not in text
    # The check itself can fail: a rendered suite prompt is caught.
    assert any(p.search(TASKS["capital"].example(1, 0)[0]) for p in patterns)


def test_packed_batches_are_deterministic_and_full(tokenizer):
    a = packed_batch(tokenizer, seed=0, step=7, batch_size=4, block_size=32)
    b = packed_batch(tokenizer, seed=0, step=7, batch_size=4, block_size=32)
    c = packed_batch(tokenizer, seed=0, step=8, batch_size=4, block_size=32)
    assert a.shape == (4, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert (a != tokenizer.pad_token_id).all()  # packed: no padding


def test_pretrain_runs_end_to_end_and_resumes(tmp_path):
    cfg = PretrainConfig(hidden_size=16, num_layers=1, num_heads=2, block_size=32, batch_size=4, steps=6,
                         warmup_steps=2, log_every=2, save_every=3, probe_every=6, probe_per_family=1,
                         phase2_step=3, threads=1)
    record = pretrain(cfg, tmp_path / "b", progress=False)
    assert record["step"] == 6 and record["tokens_seen"] == 6 * 4 * 32
    assert [r["step"] for r in record["log"]] == [2, 4, 6]
    assert record["log"][-1]["loss"] < record["log"][0]["loss"] + 1.0
    saved = json.loads((tmp_path / "b" / "pretrain.json").read_text())
    assert saved["step"] == 6 and (tmp_path / "b" / "model.safetensors").exists()
    # A longer run with the same folder continues from step 6 instead of starting over.
    longer = pretrain(PretrainConfig(**{**cfg.__dict__, "steps": 8}), tmp_path / "b", progress=False)
    assert longer["step"] == 8 and longer["resumed_with"][0]["step"] == 6


def test_pretrain_command_at_toy_budget(tmp_path):
    out = tmp_path / "base"
    proc = subprocess.run([sys.executable, "-m", "sftmix.cli", "pretrain", "--out", str(out), "--steps", "4",
                           "--hidden_size", "16", "--num_layers", "1", "--num_heads", "2", "--batch_size", "2",
                           "--block_size", "32", "--probe_per_family", "1", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "pretrain.json").read_text())
    assert record["step"] == 4 and "pretrain" in record["command"]


def test_probe_scores_a_model_that_knows_nothing_at_zero(tokenizer):
    from sftmix.toy.model import build_tiny_model

    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=16, num_layers=1, num_heads=2)
    acc = probe_world(model, tokenizer, per_family=2, seed=random.Random(0).randrange(100))
    assert set(acc) == set(TASKS) and max(acc.values()) <= 0.5
