"""What each stage of :func:`sftmix.experiment.run_experiment` does.

Each function reads its inputs from the run directory, writes its outputs atomically and
returns nothing; the bookkeeping (skip, resume, keys) lives in :mod:`sftmix.experiment`.

Under several processes, :func:`reference_stage`, :func:`dynamics_stage` and
:func:`train_stage` are called on every process (they train or score together) and
write their files from the main process only; the other stages are called on the main
process alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import tokenize_examples
from .models import load_model_and_tokenizer, load_tokenizer
from .training import latest_checkpoint, train_model, write_json


def _processes():
    from .experiment import Processes

    return Processes()


def _tokenize_on_every_process(config, train_examples, tokenizer):
    # The main process first, so a dataset cached on disk is written once and read by the others.
    with _processes().state.main_process_first():
        return tokenize_examples(train_examples, tokenizer, max_length=config.data_args().max_length)


def reference_stage(config, train_examples, run: Path) -> None:
    """Train the reference model with NTP and keep ``n_checkpoints`` checkpoints."""
    from .scoring import train_reference

    model, tokenizer = load_model_and_tokenizer(config.model_args(reference=True))
    tokenized = _tokenize_on_every_process(config, train_examples, tokenizer)
    out = run / "reference"
    args = config.training_args("ntp", config.seeds[0], out, extra=config.reference_training)
    checkpoints = train_reference(model, tokenizer, tokenized, args, n_checkpoints=config.n_checkpoints,
                                  out_dir=out, record_online=config.dynamics_mode == "online")
    procs = _processes()
    procs.barrier()  # every process has written its part of the checkpoints (its RNG state)
    if procs.is_main:
        for checkpoint in checkpoints:
            _keep_weights_only(Path(checkpoint))
        write_json(out / "checkpoints.json", [str(c) for c in checkpoints])


# Trainer files a reference checkpoint does not need: it is scored, never resumed. The
# optimizer state alone is twice the size of the weights, and these files are pickles.
_RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "training_args.bin")


def _keep_weights_only(checkpoint: Path) -> None:
    for pattern in _RESUME_ONLY:
        for f in checkpoint.glob(pattern):
            f.unlink(missing_ok=True)


def dynamics_stage(config, train_examples, run: Path, *, progress: bool = True) -> None:
    """Score the reference checkpoints (or read the online record) into dynamics.parquet."""
    from .dynamics import compute_dynamics, dataset_fingerprint, read_checkpoint_frames, save_dynamics
    from .scoring import score_checkpoints

    model_args = config.model_args(reference=True)
    tokenizer = load_tokenizer(model_args)
    tokenized = _tokenize_on_every_process(config, train_examples, tokenizer)
    checkpoints = json.loads((run / "reference" / "checkpoints.json").read_text())
    if config.dynamics_mode == "online":
        per_checkpoint = read_checkpoint_frames(run / "reference" / "online")
    else:  # every process scores a shard; each gets the whole frames back
        per_checkpoint = score_checkpoints(checkpoints, tokenized, out_dir=run / "reference" / "scores",
                                           progress=progress)
    if not _processes().is_main:
        return
    table = compute_dynamics(per_checkpoint, train_examples)
    save_dynamics(table, run / "dynamics.parquet", fingerprint=dataset_fingerprint(train_examples["example_id"]),
                  model_name=model_args.model_name_or_path, checkpoints=checkpoints)


def split_stage(config, run: Path) -> None:
    from .dynamics import load_dynamics, save_split, split_by_confidence

    table = load_dynamics(run / "dynamics.parquet")
    save_split(split_by_confidence(table, ratio=config.split_ratio, metric=config.split_metric),
               run / "split.json")


def train_stage(config, method: str, seed: int, train_examples, out: Path, split_path: Path) -> None:
    """Train one (method, seed) from the same base weights; resume from its last complete checkpoint."""
    from .experiment import clean_checkpoints

    model_args = config.model_args()
    model, tokenizer = load_model_and_tokenizer(model_args)
    tokenized = _tokenize_on_every_process(config, train_examples, tokenizer)
    args = config.training_args(method, seed, out, split_file=split_path,
                                extra={"save_strategy": "epoch", "save_total_limit": 1})
    procs = _processes()
    # The main process picks (and tidies) the checkpoint; every process resumes from the same one.
    resume = procs.broadcast(latest_checkpoint(out) if procs.is_main else None)
    train_model(model, tokenizer, tokenized, args, resume=resume)
    procs.barrier()  # no process is still writing into a checkpoint folder
    if procs.is_main:
        clean_checkpoints(out)


def _load_trained(auto_class, path):
    """A saved model in its saved dtype, on this process's device (the main GPU, or the CPU)."""
    model = auto_class.from_pretrained(path, use_safetensors=True, dtype="auto")
    return model.to(_processes().state.device)


def eval_stage(config, out: Path, held_out, *, progress: bool = True) -> None:
    from transformers import AutoModelForCausalLM

    from .evaluate import evaluate_model

    tokenizer = load_tokenizer(config.model_args())
    model = _load_trained(AutoModelForCausalLM, out)
    result = evaluate_model(model, tokenizer, held_out, max_length=config.data_args().max_length,
                            generate=config.generate, progress=progress)
    generations = result.pop("generations", None)
    if generations is not None:
        write_json(out / "generations.json", [
            {"example_id": eid, "output": g} for eid, g in zip(held_out["example_id"], generations)])
    write_json(out / "eval.json", result)


def embeddings_stage(config, train_examples, run: Path) -> None:
    """Pooled response embeddings from the final reference model, projected to 2-D."""
    from transformers import AutoModelForCausalLM

    from .dynamics import load_dynamics
    from .embed import embed_examples
    from .projection import project_pca, project_umap

    tokenizer = load_tokenizer(config.model_args(reference=True))
    checkpoints = json.loads((run / "reference" / "checkpoints.json").read_text())
    model = _load_trained(AutoModelForCausalLM, checkpoints[-1])
    emb = embed_examples(model, tokenizer, train_examples, max_length=config.data_args().max_length)
    tmp = run / ".embeddings.tmp.npy"
    np.save(tmp, emb)
    tmp.replace(run / "embeddings.npy")
    ids = list(train_examples["example_id"])
    if config.projection == "umap":
        proj = project_umap(emb, ids=ids, seed=config.seeds[0], cache_dir=run / "cache")
    else:
        proj = project_pca(emb, ids=ids)
    table = load_dynamics(run / "dynamics.parquet")
    keep = [c for c in ("example_id", "confidence", "confidence_prob", "correctness", "task", "noisy",
                        "difficulty") if c in table.columns]
    method = proj.attrs.get("method", config.projection)
    proj = proj.merge(table[keep], on="example_id", how="left")
    proj.attrs["method"] = method  # merge drops attrs; the plots label the axes with it
    tmp = run / ".projection.tmp.parquet"
    proj.to_parquet(tmp)
    tmp.replace(run / "projection.parquet")
