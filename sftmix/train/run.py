"""Glue between the configuration dataclasses and a finished training run.

:func:`train_model` runs :class:`SFTMixTrainer` and saves the weights (safetensors),
tokenizer, log history and config into one folder; :func:`train_reference` trains the
reference run and keeps its C checkpoints. The CLI and the experiment pipeline both call these.
:func:`check_reference_examples` makes sure a reference model of another family (another
tokenizer) keeps exactly the examples the trained model trains on, before anything trains.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import datasets
from transformers import TrainerCallback

from ..config import SFTMixConfig
from ..data import PadCollator
from ..data.templates import template_name
from ..distributed import Processes
from ..errors import SplitError
from ..io import LOG_HISTORY_FILE, ONLINE_DIR, atomic_write_json
from ..models import ADAPTER_BASE_FILE
from .callbacks import CheckpointSchedule, DynamicsRecorder, quiet_progress
from .trainer import SFTMixTrainer

logger = logging.getLogger(__name__)


def train_model(model, tokenizer, train_tokenized: datasets.Dataset, config: SFTMixConfig, *,
                split: dict | None = None, callbacks=None, save: bool = True,
                resume: bool | str | None = None, eval_tokenized: datasets.Dataset | None = None) -> SFTMixTrainer:
    """Train and (by default) save model, tokenizer, ``log_history.json`` and ``config.json``.

    ``resume=True`` continues from the newest complete checkpoint in ``config.output_dir``
    (a path continues from that checkpoint). Under several processes call it on every
    process: the Trainer trains data-parallel, and only the main process writes files.
    ``eval_tokenized`` (with ``config.eval_strategy`` set) logs the held-out NTP loss
    (``eval_loss``) during training: the curve that shows when a run starts to overfit.
    """
    if resume is True:
        procs = Processes()
        # Every process must resume from the same checkpoint.
        resume = procs.broadcast(latest_checkpoint(config.output_dir) if procs.is_main else None)
    trainer = SFTMixTrainer(model=model, args=config, train_dataset=train_tokenized, eval_dataset=eval_tokenized,
                            data_collator=PadCollator.for_tokenizer(tokenizer), processing_class=tokenizer,
                            callbacks=[*(callbacks or []), *([NoCheckpointAtTheEnd()] if save else [])], split=split)
    quiet_progress(trainer)
    start = time.time()
    trainer.train(resume_from_checkpoint=resume or None)
    if save:
        out = Path(config.output_dir)
        trainer.save_model(str(out))
        if trainer.is_world_process_zero():
            atomic_write_json(out / LOG_HISTORY_FILE, trainer.state.log_history)
            # The tokenizer saved beside the weights carries the chat template it was trained with
            # (eval and generation load it from there); its name is recorded here too.
            atomic_write_json(out / "train_config.json", {
                "training": {k: v for k, v in config.to_dict().items()},
                "chat_template": template_name(getattr(tokenizer, "chat_template", None)),
                "train_seconds": time.time() - start})
            # The Trainer also pickles its arguments (training_args.bin); train_config.json holds
            # them as JSON, and a finished run keeps no file that needs unpickling to read.
            (out / "training_args.bin").unlink(missing_ok=True)
            base = getattr(model, "sftmix_base_args", None)
            if base is not None:  # a LoRA adapter: record its base so eval can rebuild it
                atomic_write_json(out / ADAPTER_BASE_FILE, base)
    return trainer


class NoCheckpointAtTheEnd(TrainerCallback):
    """No resumable checkpoint at the last step: :func:`train_model` saves the final weights itself, and a
    checkpoint there (weights + AdamW state + RNG, over 3x the weights: 3.2 GB for Gemma 3 270M) would
    be written only to be deleted. Checkpoints before the end stay, for resuming an interrupted run."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_save = False
        return control

    on_epoch_end = on_step_end


def latest_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete Trainer checkpoint in ``output_dir`` (None if there is none).

    The Trainer writes ``trainer_state.json`` last, so a folder without a readable one was
    cut short (a process killed while saving); such folders are removed. Call it on the
    main process only.
    """
    def step(p: Path) -> int:
        suffix = p.name[len("checkpoint-"):]
        return int(suffix) if suffix.isdigit() else -1

    for ckpt in sorted(Path(output_dir).glob("checkpoint-*"), key=step, reverse=True):
        try:
            json.loads((ckpt / "trainer_state.json").read_text())
            return str(ckpt)
        except (OSError, ValueError):
            logger.warning("%s is incomplete (interrupted while saving); removing it", ckpt)
            shutil.rmtree(ckpt, ignore_errors=True)
    return None


def train_reference(model, tokenizer, train_tokenized, config, *, n_checkpoints: int = 3,
                    steps: list[int] | None = None, out_dir, record_online: bool = False,
                    callbacks=None, eval_tokenized: datasets.Dataset | None = None,
                    confidence_tokens: str = "content") -> list[str]:
    """Train the reference model with NTP and keep C checkpoints; return their folders.

    Checkpoints: ``n_checkpoints`` spread evenly over the run, or at the optimizer
    ``steps`` given. ``config`` (an :class:`sftmix.SFTMixConfig`) is copied with
    ``method="ntp"``, ``output_dir=out_dir``, ``save_strategy="no"`` and no
    ``save_total_limit``: the :class:`CheckpointSchedule` decides what is saved; and with
    ``save_only_model=True``: a reference checkpoint is scored, never resumed (an interrupted
    reference run starts again), so no optimizer state (twice the weights) is written. With
    ``record_online`` a :class:`DynamicsRecorder` writes
    online statistics of the ``confidence_tokens``, one file per epoch, to ``<out_dir>/online``.
    ``eval_tokenized`` (with
    ``config.eval_strategy`` set) logs the held-out loss, as :func:`train_model` does.
    """
    if config.method != "ntp":
        logger.info("the reference run trains with NTP (config has method=%r)", config.method)
    args = dataclasses.replace(config, method="ntp", output_dir=str(out_dir), save_strategy="no",
                               save_total_limit=None, save_only_model=True)
    schedule = CheckpointSchedule(steps=steps) if steps is not None else CheckpointSchedule(n_checkpoints)
    extra = [schedule, *(callbacks or [])]
    if record_online:
        extra.append(DynamicsRecorder(Path(out_dir) / ONLINE_DIR, example_ids=train_tokenized["example_id"],
                                      tokens=confidence_tokens))
    if eval_tokenized is None:
        args = dataclasses.replace(args, eval_strategy="no")
    trainer = SFTMixTrainer(model=model, args=args, train_dataset=train_tokenized, eval_dataset=eval_tokenized,
                            processing_class=tokenizer,
                            data_collator=PadCollator.for_tokenizer(tokenizer), callbacks=extra)
    trainer.checkpoint_full_weights = True  # scored as models, also when FSDP saves sharded checkpoints
    quiet_progress(trainer)
    trainer.train()
    if trainer.is_world_process_zero():  # the whole log, incl. the evaluation after the last save
        atomic_write_json(Path(out_dir) / LOG_HISTORY_FILE, trainer.state.log_history)
    dirs = [str(Path(out_dir) / f"checkpoint-{s}") for s in schedule.steps]
    missing = [d for d in dirs if not Path(d).exists()]
    if missing:
        raise RuntimeError(f"the reference run did not save {missing}")
    return dirs


def check_reference_examples(tokenized: datasets.Dataset, reference_tokenized: datasets.Dataset, *,
                             max_length: int, names: tuple[str, str] = ("model", "reference_model")) -> None:
    """:class:`SplitError` unless the trained model's and the reference's tokenized data hold the same examples.

    A split is by example id, so a reference of another family (another tokenizer) can split the
    trained model's data, but only when its ids are exactly the training ids: an example that one
    tokenizer cuts to no response token at ``max_length`` (and drops) while the other keeps it
    would be trained without a half, or be in a half without being trained.
    """
    kept = [set(t["example_id"]) for t in (tokenized, reference_tokenized)]
    (a, kept_a), (b, kept_b) = zip(names, kept)
    for name, ids, other, other_ids in ((a, kept_a, b, kept_b), (b, kept_b, a, kept_a)):
        only = sorted(ids - other_ids)
        if only:
            raise SplitError(f"{name} keeps {len(only)} training examples that {other} drops at max_length="
                             f"{max_length} (no answer token left), e.g. {only[0]!r}: the reference's split would "
                             "not hold exactly the training ids; give the reference more tokens "
                             "(recipe.reference_max_length) or set drop_overlong: true")


def clean_checkpoints(out: Path) -> None:
    """Drop intermediate Trainer checkpoints once a run has finished and saved its weights."""
    for ckpt in out.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)


__all__ = ["NoCheckpointAtTheEnd", "check_reference_examples", "clean_checkpoints", "latest_checkpoint", "train_model",
           "train_reference"]
