"""Pretrain the tiny base model on the toy world's plain text (``sftmix pretrain``).

A plain causal-LM loop, not ``Trainer``: the corpus is an endless stream packed into
full blocks (no padding, no labels to mask), so a dozen lines do the job and the loop
stays readable. Batch ``s`` is drawn from a stream seeded by ``(seed, s)``, so a run
interrupted after a saved step resumes with the exact batches it would have seen.

The output folder is an ordinary Hugging Face model folder (config, safetensors weights,
tokenizer) plus ``pretrain.json``: the command, seed, steps, wall time, tokens seen,
final loss and the probe accuracy per family, i.e. how the shipped weights were made.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..io import atomic_write, atomic_write_json
from .model import build_tiny_model
from .tasks import TASKS
from .tokenizer import build_toy_tokenizer
from .world import statement, world_text

__all__ = ["PretrainConfig", "pretrain", "probe_world"]


@dataclass
class PretrainConfig:
    """Settings of the base model's pretraining (defaults: the shipped ``tiny-base``)."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    block_size: int = 128
    batch_size: int = 64
    steps: int = 3000
    learning_rate: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    seed: int = 0
    log_every: int = 50
    save_every: int = 250
    probe_every: int = 500
    probe_per_family: int = 40
    threads: int | None = None
    # From this step on, a fraction qa_fraction of the text is worked Q/A examples (phase 2).
    phase2_step: int | None = None
    qa_fraction: float = 0.5
    extra: dict = field(default_factory=dict)


def packed_batch(tokenizer, seed: int, step: int, batch_size: int, block_size: int,
                 qa_fraction: float = 0.0) -> torch.Tensor:
    """``(batch_size, block_size)`` token ids: ``<s>text`` documents packed end to end."""
    stream = world_text(seed=seed * 1_000_003 + step, qa_fraction=qa_fraction)
    need = batch_size * block_size
    ids: list[int] = []
    bos = tokenizer.bos_token_id
    while len(ids) < need:
        texts = [next(stream) for _ in range(64)]
        for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
            ids.append(bos)
            ids.extend(enc)
    return torch.tensor(ids[:need], dtype=torch.long).view(batch_size, block_size)


def _lr(cfg: PretrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.learning_rate * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


@torch.no_grad()
def probe_world(model, tokenizer, *, per_family: int = 40, seed: int = 12345) -> dict[str, float]:
    """Exact match of greedy completions of held-out world statements, per family.

    Each probe is a statement cut just before its answer;
    the model must write the answer. A quick measure of what the base knows.
    """
    rng = random.Random(f"sftmix-probe:{seed}")
    prompts, answers, families = [], [], []
    for name, family in TASKS.items():
        for _ in range(per_family):
            d = rng.choice(sorted(family.levels))
            i = rng.randrange(len(family.levels[d].items))
            answer = family.levels[d].render(family.levels[d].items[i])[1]
            # The first phrasing that ends with the answer ("n is even." does not say "yes").
            text = next(t for t in (statement(name, d, i, p) for p in range(4))
                        if t.rstrip(".").endswith(answer))
            cut = text.rstrip(".").rfind(answer)
            prompts.append(tokenizer.bos_token + text[:cut])
            answers.append(answer)
            families.append(name)
    was_training = model.training
    model.eval()
    correct: dict[str, list[bool]] = {name: [] for name in TASKS}
    for start in range(0, len(prompts), 128):
        chunk = slice(start, start + 128)
        got = greedy_complete(model, tokenizer, prompts[chunk], max_new_tokens=max(map(len, answers[chunk])))
        for g, a, f in zip(got, answers[chunk], families[chunk]):
            correct[f].append(g[:len(a)] == a)
    model.train(was_training)
    return {name: sum(v) / len(v) for name, v in correct.items()}


@torch.no_grad()
def greedy_complete(model, tokenizer, prompts: list[str], *, max_new_tokens: int) -> list[str]:
    """Greedy continuation of each prompt (left-padded batch, KV cache)."""
    enc = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(map(len, enc))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc])
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=pad, eos_token_id=None)
    return tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


def pretrain(cfg: PretrainConfig, out_dir: str | Path, *, resume: bool = True, progress: bool = True) -> dict:
    """Pretrain the tiny base on the world stream; write a model folder to ``out_dir``.

    Saves (atomically, every ``save_every`` steps and at the end) the weights, tokenizer,
    optimizer state and ``pretrain.json``; with ``resume`` a rerun continues from there.
    Returns the record written to ``pretrain.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tokenizer = build_toy_tokenizer()
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=cfg.hidden_size,
                             num_layers=cfg.num_layers, num_heads=cfg.num_heads, max_position=256,
                             seed=cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=cfg.learning_rate, betas=(0.9, 0.95))
    state_file = out / "trainer_state.pt"
    record = {"config": asdict(cfg), "command": " ".join(sys.argv), "log": [], "probe": [],
              "wall_seconds": 0.0, "step": 0}
    if resume and state_file.exists():
        state = torch.load(state_file, weights_only=True)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        record = state["record"]
        # A resumed run may continue with changed settings (e.g. phase2_step): keep both.
        if record["config"] != asdict(cfg):
            record.setdefault("resumed_with", []).append({"step": record["step"], "config": asdict(cfg),
                                                          "command": " ".join(sys.argv)})
            record["config"] = asdict(cfg)
        if progress:
            print(f"resuming at step {record['step']}", flush=True)
    model.train()
    started = time.time() - record["wall_seconds"]
    tokens_per_step = cfg.batch_size * cfg.block_size
    smooth = None
    for step in range(record["step"], cfg.steps):
        phase2 = cfg.phase2_step is not None and step >= cfg.phase2_step
        batch = packed_batch(tokenizer, cfg.seed, step, cfg.batch_size, cfg.block_size,
                             qa_fraction=cfg.qa_fraction if phase2 else 0.0)
        for group in optim.param_groups:
            group["lr"] = _lr(cfg, step)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        smooth = loss.item() if smooth is None else 0.9 * smooth + 0.1 * loss.item()
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            elapsed = time.time() - started
            record["log"].append({"step": done, "loss": round(smooth, 4), "lr": _lr(cfg, step),
                                  "seconds": round(elapsed, 1)})
            if progress:
                print(f"step {done}/{cfg.steps} loss {smooth:.4f} "
                      f"{done * tokens_per_step / elapsed:.0f} tok/s", flush=True)
        if done % cfg.probe_every == 0 or done == cfg.steps:
            acc = probe_world(model, tokenizer, per_family=cfg.probe_per_family)
            record["probe"].append({"step": done, "mean": round(sum(acc.values()) / len(acc), 4),
                                    **{k: round(v, 3) for k, v in acc.items()}})
            if progress:
                print("probe", json.dumps(record["probe"][-1]), flush=True)
        if done % cfg.save_every == 0 or done == cfg.steps:
            record.update(step=done, wall_seconds=round(time.time() - started, 1),
                          tokens_seen=done * tokens_per_step, final_loss=round(smooth, 4))
            _save(model, tokenizer, optim, record, out, atomic_write_json)
    return record


def _save(model, tokenizer, optim, record: dict, out: Path, write_json) -> None:
    model.save_pretrained(out)  # safetensors
    tokenizer.save_pretrained(out)
    state = {"model": model.state_dict(), "optim": optim.state_dict(), "record": record}
    atomic_write(out / "trainer_state.pt", lambda tmp: torch.save(state, tmp))
    write_json(out / "pretrain.json", record)
