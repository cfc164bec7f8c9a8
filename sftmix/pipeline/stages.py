"""What each stage of :func:`sftmix.pipeline.experiment.run_experiment` does.

Each stage has two layers:

* a *core* function with explicit arguments (:func:`reference_run`, :func:`score_reference`,
  :func:`prune_reference_weights`, :func:`split_dynamics`, :func:`evaluate_and_save`) that the
  ``sftmix dynamics``, ``split`` and ``eval`` commands call directly, and
* a ``*_stage(ctx, ...)`` function that reads a :class:`~sftmix.pipeline.context.RunContext`
  (the configuration, the run directory, the data, and the tokenizers and tokens the run has
  loaded so far) and calls the core; the bookkeeping (skip, resume, keys) lives in
  :mod:`sftmix.pipeline.experiment` and :mod:`sftmix.pipeline.runner`.

Each writes its outputs atomically. Under several processes, :func:`reference_stage`,
:func:`dynamics_stage` and :func:`train_stage` are called on every process (they train or
score together) and write their files from the main process only; the other stages are
called on the main process alone.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from transformers import AutoModelForCausalLM

from ..analysis.embed import embed_examples
from ..analysis.evaluate import evaluate_model
from ..analysis.fit import fit_table
from ..analysis.generate import DEFAULT_MAX_NEW_TOKENS
from ..analysis.projection import project
from ..distributed import Processes
from ..dynamics import (
    compute_dynamics,
    dataset_fingerprint,
    load_dynamics,
    read_checkpoint_frames,
    save_dynamics,
    save_split,
    score_checkpoints,
    split_by_confidence,
)
from ..io import (
    EVAL_FILE,
    GENERATIONS_FILE,
    LOG_HISTORY_FILE,
    TRAIN_KEY_FILE,
    WEIGHT_PATTERNS,
    WEIGHTS_REMOVED_FILE,
    RunDir,
    atomic_copy,
    atomic_write,
    atomic_write_json,
    link_or_copy,
    link_same_files,
    require_weights,
    unlink_shared,
)
from ..models import adapter_base, load_adapter, load_model
from ..recipe import SPLIT_METRICS
from ..train import check_reference_examples, clean_checkpoints, latest_checkpoint, train_model, train_reference
from .context import RunContext
from .weights import checkpoint_weights  # noqa: F401 (st.checkpoint_weights)


# ------------------------------------------------------------------ core functions
def reference_run(run: RunDir, model, tokenizer, tokenized, train_args, *, n_checkpoints: int,
                  online: bool = False, eval_tokenized=None, confidence_tokens: str = "content") -> list[str]:
    """Train the reference ``model`` with NTP on ``tokenized`` into ``run.reference``; keep ``n_checkpoints``
    checkpoints.

    Writes ``run.checkpoints`` (the list of checkpoint folders) and returns it. With
    ``eval_tokenized`` held-out examples (and ``eval_strategy`` set) the held-out loss is logged too.
    """
    if eval_tokenized is not None and train_args.eval_strategy != "no":
        train_args = dataclasses.replace(train_args, prediction_loss_only=True)
    else:
        eval_tokenized = None
    checkpoints = train_reference(model, tokenizer, tokenized, train_args, n_checkpoints=n_checkpoints,
                                  out_dir=run.reference, record_online=online, eval_tokenized=eval_tokenized,
                                  confidence_tokens=confidence_tokens)
    procs = Processes()
    procs.barrier()  # every process has written its part of the checkpoints (its RNG state)
    if procs.is_main:
        for checkpoint in checkpoints:
            _keep_weights_only(Path(checkpoint))
        for checkpoint in checkpoints[:-1]:  # the same tokenizer and config in every checkpoint: stored once
            link_same_files(checkpoint, checkpoints[-1])
        atomic_write_json(run.checkpoints, [str(c) for c in checkpoints])
    return [str(c) for c in checkpoints]


# Trainer files a reference checkpoint does not need: it is scored, never resumed. The
# optimizer state alone is twice the size of the weights, and these files are pickles.
# FSDP's sharded checkpoints hold the weights and optimizer as folders of per-process shards.
_RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "training_args.bin",
                "optimizer_*", "pytorch_model_fsdp_*")


def _keep_weights_only(checkpoint: Path) -> None:
    for pattern in _RESUME_ONLY:
        for f in checkpoint.glob(pattern):
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink(missing_ok=True)


def prune_reference_weights(run: RunDir) -> int:
    """Delete the weights of every reference checkpoint but the last, once the dynamics are scored.

    The scores (``reference/scores/``) and each checkpoint's config and trainer state stay; the
    last checkpoint's weights stay for the embeddings and the NTP run it may be. A real model's
    checkpoint is its full weights (SmolLM2-135M: 538 MB each), so this keeps a run directory
    to the final models. Returns the bytes freed.
    """
    freed = 0
    for checkpoint in json.loads(run.checkpoints.read_text())[:-1]:
        for pattern in WEIGHT_PATTERNS:
            for f in Path(checkpoint).glob(pattern):
                freed += f.stat().st_size
                f.unlink()
    return freed


def score_reference(run: RunDir, tokenized, train_examples, *, model_name: str, online: bool = False,
                    progress: bool = True, held_tokenized=None, tokens: str = "content") -> pd.DataFrame | None:
    """Score the reference checkpoints on ``tokenized`` (or read the online record) into ``run.dynamics``.

    ``tokens``: the response tokens that enter confidence (``"content"`` or ``"trained"``,
    see :mod:`sftmix.data.tokenize`); the fit table is scored on the same tokens.

    With ``held_tokenized`` held-out examples (and checkpoint scoring), the held-out set is
    scored at the same checkpoints and ``run.fit`` gets the NLL on clean / corrupted training
    answers and held-out ones per checkpoint (:func:`sftmix.analysis.fit.fit_table`).
    Returns the dynamics table on the main process (None on the others).
    """
    checkpoints = json.loads(run.checkpoints.read_text())
    held_frames = None
    if online:
        per_checkpoint = read_checkpoint_frames(run.online)
    else:  # every process scores a shard; each gets the whole frames back
        per_checkpoint = score_checkpoints(checkpoints, tokenized, out_dir=run.scores, progress=progress,
                                           tokens=tokens)
        if held_tokenized is not None:
            held_frames = score_checkpoints(checkpoints, held_tokenized, out_dir=run.held_out_scores,
                                            progress=progress, tokens=tokens)
    if not Processes().is_main:
        return None
    if held_frames is not None:
        noisy = ([e for e, flag in zip(train_examples["example_id"], train_examples["noisy"]) if flag]
                 if "noisy" in train_examples.column_names else [])
        fit = fit_table(per_checkpoint, held_frames, noisy)
        atomic_write(run.fit, lambda tmp: fit.to_csv(tmp, index=False))
    table = compute_dynamics(per_checkpoint, train_examples)
    save_dynamics(table, run.dynamics, fingerprint=dataset_fingerprint(train_examples["example_id"]),
                  model_name=model_name, checkpoints=checkpoints)
    return table


def split_dynamics(dynamics_path, out, *, ratio: float, metric: str) -> dict:
    """Split the examples of a dynamics table by confidence and write the split to ``out``."""
    split = split_by_confidence(load_dynamics(dynamics_path), ratio=ratio, metric=metric)
    save_split(split, out)
    return split


def generation_records(examples, generations, cut=None) -> list[dict]:
    """One record per example: id, the last user message, the reference answer (when there is
    one), the generated answer and whether it was cut at ``max_new_tokens``."""
    refs = examples["answer"] if "answer" in examples.column_names else (
        examples["response"] if "response" in examples.column_names else [None] * len(generations))
    prompts = [next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "") for msgs in examples["messages"]]
    cut = cut if cut is not None else [None] * len(generations)
    return [{"example_id": str(eid), "prompt": p, "reference": r, "output": g, "cut": c}
            for eid, p, r, g, c in zip(examples["example_id"], prompts, refs, generations, cut)]


def evaluate_and_save(model, tokenizer, held_out, *, out_file=None, generations_file=None, max_length: int,
                      generate: bool = True, max_new_tokens: int | None = DEFAULT_MAX_NEW_TOKENS,
                      exact_match: bool = True, progress: bool = True, generations_in_out: bool = False,
                      tokenized=None) -> dict:
    """Evaluate on held-out examples; write the metrics (and the generations) as JSON when given paths.

    ``tokenized``: the held-out examples already tokenized as they trained (e.g. ``last_turn_only``);
    tokenized here otherwise. ``generations_file`` gets :func:`generation_records`;
    ``generations_in_out`` also puts them into ``out_file`` under ``"generations"``. Returns the
    metrics, with the generations under ``"generations"`` when ``generate``.
    """
    result = evaluate_model(model, tokenizer, held_out, max_length=max_length, generate=generate,
                            max_new_tokens=max_new_tokens, exact_match=exact_match, progress=progress,
                            tokenized=tokenized)
    generations = result.get("generations")
    records = generation_records(held_out, generations, result.get("generation_cut")) if generations else None
    if records is not None and generations_file is not None:
        atomic_write_json(generations_file, records)
    if out_file is not None:
        metrics = {k: v for k, v in result.items() if k not in ("generations", "generation_cut")}
        atomic_write_json(out_file, {**metrics, "generations": records} if generations_in_out and records
                          else metrics)
    return result


# ------------------------------------------------------------------ pipeline stages
def reference_stage(ctx: RunContext) -> None:
    """Train the reference model with NTP and keep ``recipe.n_checkpoints`` checkpoints.

    When the reference run is also the NTP run of the first seed
    (``config.reference_is_ntp_run``) it logs the held-out loss like any training run;
    otherwise it is only scored at its checkpoints and logs none.
    """
    config, recipe = ctx.config, ctx.config.recipe_args()
    reused = config.reference_is_ntp_run and ctx.held_out is not None
    tokenizer = ctx.tokenizer(reference=True)
    if config.reference_model is not None:  # another tokenizer may drop other examples: checked before training
        check_reference_examples(ctx.tokenized("train"), ctx.tokenized("train", reference=True),
                                 max_length=config.recipe_args().reference_max_length or config.data_args().max_length,
                                 names=(config.model_args().model_name_or_path,
                                        config.model_args(reference=True).model_name_or_path))
    model = load_model(config.model_args(reference=True), tokenizer)
    args = config.reference_args({"output_dir": str(ctx.rd.reference)})
    reference_run(ctx.rd, model, tokenizer, ctx.tokenized("train", reference=True), args,
                  n_checkpoints=recipe.n_checkpoints, online=recipe.dynamics_mode == "online",
                  eval_tokenized=ctx.tokenized("held_out", reference=True) if reused and args.eval_strategy != "no"
                  else None, confidence_tokens=recipe.confidence_tokens)


def clear_reference_dir(rd: RunDir) -> None:
    """Empty the reference folder before the reference run trains (again).

    Its checkpoints are named by step, and the dynamics stage reads a checkpoint's scores from
    ``scores/`` when they exist (an interrupted scoring resumes): scores or checkpoints left by a
    reference run of another configuration would be read as this one's.
    """
    if rd.reference.exists():
        shutil.rmtree(rd.reference)


def claim_train_dir(out: Path, key: str) -> None:
    """Keep a training folder's checkpoints only if they were made with this configuration.

    A run killed mid-training leaves ``checkpoint-*`` folders to resume from; if the
    configuration changed since, they belong to another run and are removed. Files hard-linked
    with the reference's are unlinked (a tokenizer's ``save_pretrained`` writes in place).
    """
    marker = Path(out) / TRAIN_KEY_FILE
    if marker.exists() and json.loads(marker.read_text()).get("key") != key:
        clean_checkpoints(out)
    unlink_shared(out)  # files linked to the reference's: what is saved here next must not write into them
    atomic_write_json(marker, {"key": key})


def ntp_from_reference(ctx: RunContext, out: Path) -> None:
    """The NTP run of the first seed *is* the reference run: link its final weights and tokenizer, copy its log.

    Same base weights, data, seed and settings, so training it again would repeat the
    reference run step for step (the split and the dynamics do not touch NTP training).
    """
    rd, out = ctx.rd, Path(out)
    last = Path(json.loads(rd.checkpoints.read_text())[-1])
    if not Processes().is_main:
        return
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        if (last / name).exists():
            link_or_copy(last / name, out / name)
    ctx.tokenizer().save_pretrained(out)
    link_same_files(out, last)  # the tokenizer the reference saved: one copy
    atomic_copy(rd.reference / LOG_HISTORY_FILE, out / LOG_HISTORY_FILE)


def scores_held_out(ctx: RunContext) -> bool:
    """Whether the dynamics stage also scores the held-out set (fit.csv): checkpoint scoring with held-out data."""
    return ctx.held_out is not None and ctx.config.recipe_args().dynamics_mode != "online"


def dynamics_stage(ctx: RunContext) -> None:
    """Score the reference checkpoints (or read the online record) into dynamics.parquet
    (and, with held-out examples, the fit per checkpoint into fit.csv)."""
    recipe = ctx.config.recipe_args()
    score_reference(ctx.rd, ctx.tokenized("train", reference=True), ctx.train_examples,
                    model_name=ctx.config.model_args(reference=True).model_name_or_path,
                    online=recipe.dynamics_mode == "online", progress=ctx.bars,
                    held_tokenized=ctx.tokenized("held_out", reference=True) if scores_held_out(ctx) else None,
                    tokens=recipe.confidence_tokens)


def prune_stage(ctx: RunContext) -> int:
    """With ``recipe.reference_weights="last"``, delete the weights of the reference checkpoints
    before the last once the dynamics are scored; returns the bytes freed."""
    if ctx.config.recipe_args().reference_weights != "last":
        return 0
    return prune_reference_weights(ctx.rd)


def split_stage(ctx: RunContext, out: Path | None = None) -> dict:
    """Split the dynamics table as ``recipe.split_ratio`` and ``split_metric`` say, into ``out``
    (default the run's split.json)."""
    recipe = ctx.config.recipe_args()
    return split_dynamics(ctx.rd.dynamics, out or ctx.rd.split, ratio=recipe.split_ratio, metric=recipe.split_metric)


def run_training_args(config, method: str, seed: int, out: Path, split_path: Path | None, *, evaluating: bool):
    """The arguments one (method, seed) run trains with: checkpoints every epoch (the run resumes from the
    last), and the held-out loss logged when ``evaluating`` and the training settings ask for it."""
    extra = {"save_strategy": "epoch", "save_total_limit": 1}
    if evaluating and config.training_args(method, seed, out).eval_strategy != "no":
        extra["prediction_loss_only"] = True
    else:  # nothing to evaluate on during training (e.g. an ablation cell): no held-out curve
        extra["eval_strategy"] = "no"
    return config.training_args(method, seed, out, split_file=split_path if method == "sftmix" else None,
                                extra=extra)


def train_stage(ctx: RunContext, method: str, seed: int, out: Path, split_path: Path | None,
                *, evaluating: bool = True) -> None:
    """Train one (method, seed) from the same base weights; resume from its last complete checkpoint.

    With ``eval_strategy`` set in the training settings and held-out examples (``evaluating``),
    the held-out NTP loss is logged during training (the training-curves figure draws it).
    """
    args = run_training_args(ctx.config, method, seed, out, split_path,
                             evaluating=evaluating and ctx.held_out is not None)
    tokenizer = ctx.tokenizer()
    model = load_model(ctx.config.model_args(), tokenizer)
    eval_tokenized = ctx.tokenized("held_out") if args.eval_strategy != "no" else None
    procs = Processes()
    # The main process picks (and tidies) the checkpoint; every process resumes from the same one.
    resume = procs.broadcast(latest_checkpoint(out) if procs.is_main else None)
    train_model(model, tokenizer, ctx.tokenized("train"), args, resume=resume, eval_tokenized=eval_tokenized)
    procs.barrier()  # no process is still writing into a checkpoint folder
    if procs.is_main:
        clean_checkpoints(out)
        (Path(out) / WEIGHTS_REMOVED_FILE).unlink(missing_ok=True)  # trained again: the weights are back
        reference = json.loads(ctx.rd.checkpoints.read_text()) if ctx.rd.checkpoints.exists() else []
        if reference:  # the tokenizer and config files the reference saved: one copy
            link_same_files(out, reference[-1])


def load_trained(path):
    """A saved model in its saved dtype, on this process's device (the main GPU, or the CPU).

    A LoRA adapter folder is loaded on its base and merged (evaluation needs no adapter layers).
    A training run whose weights ``keep_weights: reference`` removed raises a one-line ConfigError.
    """
    require_weights(path)
    base = adapter_base(str(path))
    if base is not None:
        model = load_adapter(str(path), base).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype="auto")
    return model.to(Processes().state.device)


def eval_stage(ctx: RunContext, out: Path) -> None:
    """Evaluate the model trained into ``out`` on the held-out examples: ``eval.json`` and the generations."""
    out, config = Path(out), ctx.config
    evaluate_and_save(load_trained(out), ctx.tokenizer(), ctx.held_out, tokenized=ctx.tokenized("held_out", alone=True),
                      out_file=out / EVAL_FILE, generations_file=out / GENERATIONS_FILE,
                      max_length=config.data_args().max_length, generate=config.generate,
                      max_new_tokens=config.max_new_tokens, exact_match=config.exact_match, progress=ctx.bars)


def embeddings_stage(ctx: RunContext) -> None:
    """Pooled response embeddings from the final reference model, projected to 2-D."""
    config, rd = ctx.config, ctx.rd
    checkpoints = json.loads(rd.checkpoints.read_text())
    model = load_trained(checkpoints[-1])
    tokenized = ctx.tokenized("train", reference=True, alone=True)  # a main-process stage
    emb = embed_examples(model, ctx.tokenizer(reference=True), tokenized, max_length=config.data_args().max_length,
                         progress=ctx.bars)

    def save_npy(tmp):
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a path
            np.save(f, emb)

    atomic_write(rd.embeddings, save_npy)
    ids = list(tokenized["example_id"])
    proj = project(config.projection, emb, ids=ids, seed=config.seeds[0], cache_dir=rd.cache)
    table = load_dynamics(rd.dynamics)
    keep = [c for c in ("example_id", *SPLIT_METRICS, "task", "noisy", "difficulty") if c in table.columns]
    method = proj.attrs.get("method", config.projection)
    proj = proj.merge(table[keep], on="example_id", how="left")
    proj.attrs["method"] = method  # merge drops attrs; the plots label the axes with it
    atomic_write(rd.projection, lambda tmp: proj.to_parquet(tmp))
