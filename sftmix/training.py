"""Glue between the configuration dataclasses and a finished training run.

``prepare_data`` loads and tokenizes; ``train_model`` runs :class:`SFTMixTrainer` and
saves the weights (safetensors), tokenizer, log history and config into one folder.
The CLI and the experiment pipeline both call these.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

import datasets
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from .config import DataArguments, ModelArguments, SFTMixConfig
from .data import BUILTIN, PadCollator, load_examples, tokenize_examples
from .trainer import SFTMixTrainer

logger = logging.getLogger(__name__)


def load_train_eval(data_args: DataArguments) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Canonical training and held-out examples named by ``data_args``."""
    kwargs = data_args.suite_kwargs() if data_args.dataset == BUILTIN else {}
    train = load_examples(data_args.dataset, split=data_args.dataset_split, fmt=data_args.dataset_format,
                          max_examples=data_args.max_examples, **kwargs)
    if data_args.eval_dataset is not None:
        eval_kwargs = data_args.suite_kwargs() if data_args.eval_dataset == BUILTIN else {}
        held_out = load_examples(data_args.eval_dataset, split=data_args.eval_split, **eval_kwargs)
    elif data_args.dataset == BUILTIN and data_args.n_test > 0:
        held_out = load_examples(BUILTIN, split="test", **kwargs)
    else:
        held_out = None
    return train, held_out


def train_model(model, tokenizer, train_tokenized: datasets.Dataset, config: SFTMixConfig, *,
                split: dict | None = None, callbacks=None, save: bool = True,
                resume: bool | str | None = None) -> SFTMixTrainer:
    """Train and (by default) save model, tokenizer, ``log_history.json`` and ``config.json``.

    ``resume=True`` continues from the newest complete checkpoint in ``config.output_dir``
    (a path continues from that checkpoint). Under several processes call it on every
    process: the Trainer trains data-parallel, and only the main process writes files.
    """
    if resume is True:
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        state = PartialState()
        resume = latest_checkpoint(config.output_dir) if state.is_main_process else None
        if state.num_processes > 1:  # every process must resume from the same checkpoint
            resume = broadcast_object_list([resume])[0]
    trainer = SFTMixTrainer(model=model, args=config, train_dataset=train_tokenized,
                            data_collator=PadCollator(tokenizer.pad_token_id), processing_class=tokenizer,
                            callbacks=callbacks, split=split)
    quiet_progress(trainer)
    start = time.time()
    trainer.train(resume_from_checkpoint=resume or None)
    if save:
        out = Path(config.output_dir)
        trainer.save_model(str(out))
        if trainer.is_world_process_zero():
            write_json(out / "log_history.json", trainer.state.log_history)
            write_json(out / "train_config.json", {
                "training": {k: v for k, v in config.to_dict().items()},
                "train_seconds": time.time() - start})
            # The Trainer also pickles its arguments (training_args.bin); train_config.json holds
            # them as JSON, and a finished run keeps no file that needs unpickling to read.
            (out / "training_args.bin").unlink(missing_ok=True)
    return trainer


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


def quiet_progress(trainer) -> None:
    """A progress bar, but no dict printed per logging step: the logs go to log_history.json."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgress)


class QuietProgress(ProgressCallback):
    """Trainer progress bar without the per-step log lines."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return


def write_json(path: str | Path, obj) -> None:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def tokenize_for(tokenizer, examples, data_args: DataArguments, *, report: bool = False):
    return tokenize_examples(examples, tokenizer, max_length=data_args.max_length, return_report=report)


__all__ = ["load_train_eval", "train_model", "latest_checkpoint", "write_json", "tokenize_for",
           "ModelArguments"]
