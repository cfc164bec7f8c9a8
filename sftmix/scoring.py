"""Per-example statistics of a reference run: checkpoint scoring and online recording.

Two ways to get the per-checkpoint statistics that :func:`sftmix.dynamics.compute_dynamics`
turns into confidence (the paper's stage 1):

* :func:`train_reference` trains the reference model with NTP and saves C checkpoints
  (:class:`CheckpointSchedule`); :func:`score_checkpoints` then scores every example
  at every checkpoint with the model frozen (the paper's way).
* :class:`DynamicsRecorder` collects the same statistics from the training forward
  passes themselves, at no extra forward pass (see its docstring for how that differs).

Both write one parquet file per checkpoint in the same format (see :mod:`sftmix.dynamics`).
Scoring runs the transformer once per batch and the output head in token chunks
(:func:`sftmix.ce.linear_cross_entropy`), so no full-vocabulary logits exist for a batch.
Under several processes (``accelerate launch`` / ``torchrun``) each process scores a
shard of the examples and the results are gathered on every process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object, reduce
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, TrainerCallback

from .ce import linear_cross_entropy
from .data import PadCollator
from .dynamics import (checkpoint_frame, dataset_fingerprint, read_checkpoint_frame,
                       write_checkpoint_frame)
from .head import forward_hidden, output_head

logger = logging.getLogger(__name__)


def _process_state(accelerator=None):
    """The accelerate process state (an ``Accelerator`` works too: same attributes)."""
    return accelerator if accelerator is not None else PartialState()


def response_sums(token_nll: torch.Tensor, token_correct: torch.Tensor, mask: torch.Tensor):
    """Per-example sums over response tokens, as float64 CPU tensors of shape (B,).

    Parameters
    ----------
    token_nll, token_correct : Tensor (M,), the NLL and ``argmax == gold`` of the M
        response tokens of a batch, in ``mask.nonzero()`` order.
    mask : BoolTensor (B, T), which (shifted) positions are response tokens.

    Returns
    -------
    (nll_sum, prob_sum, correct_sum, n_tokens), ``prob_sum`` summing ``exp(-nll)``.
    """
    rows = mask.nonzero()[:, 0].cpu()
    nll = token_nll.detach().cpu().double()
    out = torch.zeros(3, mask.shape[0], dtype=torch.float64)
    for k, values in enumerate((nll, torch.exp(-nll), token_correct.detach().cpu().double())):
        out[k].index_add_(0, rows, values)
    return out[0], out[1], out[2], mask.sum(1).cpu().double()


# -------------------------------------------------------------------- scoring
def _length_sorted_shard(tokenized, process_index: int, num_processes: int) -> np.ndarray:
    lengths = (np.asarray(tokenized["length"]) if "length" in tokenized.column_names
               else np.array([len(x) for x in tokenized["input_ids"]]))
    # Interleaving the length-sorted order gives every process a similar mix of lengths.
    return np.argsort(lengths, kind="stable")[process_index::num_processes]


@torch.inference_mode()
def _score_rows(model, tokenized, rows: np.ndarray, *, batch_size: int, chunk_size: int,
                desc: str, progress: bool) -> np.ndarray:
    """Sums (nll, prob, correct, n_tokens) for ``rows`` of ``tokenized``: array (len(rows), 4)."""
    device = next(model.parameters()).device
    collate = PadCollator(getattr(model.config, "pad_token_id", None) or 0)  # padding is masked anyway
    head = output_head(model)
    columns = tokenized.select_columns(["input_ids", "labels"])
    out = np.zeros((len(rows), 4))
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = columns[[int(i) for i in rows[start:start + batch_size]]]
        batch = collate([{"input_ids": a, "labels": b} for a, b in zip(chunk["input_ids"], chunk["labels"])])
        hidden = forward_hidden(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
        targets = batch["labels"][:, 1:].to(device)
        mask = targets != -100
        ce = linear_cross_entropy(hidden[:, :-1][mask], head, targets[mask], chunk_size=chunk_size,
                                  return_stats=True)
        out[start:start + len(chunk["labels"])] = torch.stack(
            response_sums(ce.token_nll, ce.token_correct, mask), dim=1).numpy()
    return out


def score_model(model, tokenized, *, name: str = "model", step: int | None = None, batch_size: int = 64,
                chunk_size: int = 4096, progress: bool = True, accelerator=None):
    """Score every example of ``tokenized`` with one model; return a checkpoint frame.

    ``tokenized`` comes from :func:`sftmix.data.tokenize_examples` (``example_id``,
    ``input_ids``, ``labels``; ``length`` is used when present). Under several processes
    each scores an interleaved shard of the length-sorted examples and every process
    returns the whole gathered frame. ``frame.attrs["n_scored"]`` counts the rows scored
    over all processes (equal to ``len(frame)``: each example is scored once).
    """
    state = _process_state(accelerator)
    ids = [str(e) for e in tokenized["example_id"]]
    rows = _length_sorted_shard(tokenized, state.process_index, state.num_processes)
    was_training = model.training
    model.eval()
    try:
        sums = _score_rows(model, tokenized, rows, batch_size=batch_size, chunk_size=chunk_size,
                           desc=f"Scoring {name}", progress=progress and state.is_main_process)
    finally:
        model.train(was_training)
    shards = [(rows, sums)]
    if state.num_processes > 1:
        shards = gather_object(shards)
    full = np.full((len(ids), 4), np.nan)
    seen = np.zeros(len(ids), dtype=bool)
    n_scored = 0
    for shard_rows, shard_sums in shards:
        n_scored += len(shard_rows)
        fresh = ~seen[shard_rows]  # de-duplicate by example (a padded shard would repeat some)
        full[shard_rows[fresh]] = shard_sums[fresh]
        seen[shard_rows] = True
    if not seen.all():
        raise RuntimeError(f"{int((~seen).sum())} examples were not scored by any process")
    frame = checkpoint_frame(ids, *full.T, name=name, step=step, fingerprint=dataset_fingerprint(ids),
                             source="scoring")
    frame.attrs["n_scored"] = n_scored
    return frame


def checkpoint_step(path) -> int | None:
    """The training step of a checkpoint folder (trainer_state.json, else ``checkpoint-<step>``)."""
    state = Path(path) / "trainer_state.json"
    if state.exists():
        return int(json.loads(state.read_text())["global_step"])
    match = re.search(r"checkpoint-(\d+)$", Path(path).name)
    return int(match.group(1)) if match else None


def _load_checkpoint(path, device):
    return AutoModelForCausalLM.from_pretrained(path, dtype="auto").to(device)


def _named(checkpoints) -> list[tuple[str, object]]:
    items = checkpoints.items() if isinstance(checkpoints, dict) else checkpoints
    named = []
    for item in items:
        if isinstance(item, tuple):
            named.append((str(item[0]), item[1]))
        elif isinstance(item, torch.nn.Module):
            raise TypeError("give an in-memory model a name: score_checkpoints([('final', model)], ...)")
        else:
            named.append((Path(item).name, item))
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"checkpoint names must be unique (they name the output files): {names}")
    return named


def score_checkpoints(checkpoints, tokenized, *, out_dir, batch_size: int = 64, chunk_size: int = 4096,
                      progress: bool = True, accelerator=None) -> list:
    """Score every example at every checkpoint; one parquet file per checkpoint.

    For each example and checkpoint, over response tokens only: perplexity
    ``exp(mean NLL)``, mean token probability, geometric-mean probability ``1 / ppl`` and
    token accuracy (see :func:`sftmix.dynamics.checkpoint_frame`).

    Parameters
    ----------
    checkpoints : list of checkpoint folders (loaded with
        ``AutoModelForCausalLM.from_pretrained``; the file is named after the folder), or
        ``(name, model)`` pairs / a ``{name: model_or_folder}`` dict.
    tokenized : examples from :func:`sftmix.data.tokenize_examples`.
    out_dir : folder for ``<name>.parquet``. A file already there with this dataset's
        fingerprint is read instead of recomputed, so an interrupted run resumes; a file
        from another dataset is recomputed. Files are keyed by name: delete them after
        retraining a checkpoint under the same name.
    batch_size, chunk_size : examples per forward pass (similar lengths together);
        tokens per output-head chunk.
    accelerator : ``Accelerator`` / ``PartialState``; default ``PartialState()``. Only
        the main process writes files. Scoring is data parallel: each process loads the
        whole model onto its device.

    Returns
    -------
    list of DataFrames, one per checkpoint, for :func:`sftmix.dynamics.compute_dynamics`.
    """
    state = _process_state(accelerator)
    out_dir = Path(out_dir)
    fingerprint = dataset_fingerprint(tokenized["example_id"])
    frames = []
    for name, source in _named(checkpoints):
        path = out_dir / f"{name}.parquet"
        cached = [None]
        if state.is_main_process and path.exists():
            frame = read_checkpoint_frame(path)
            if frame.attrs.get("fingerprint") == fingerprint and len(frame) == len(tokenized):
                cached = [frame]
            else:
                logger.info("%s was computed on another dataset; scoring %s again", path, name)
        if state.num_processes > 1:  # every process must take the same branch
            broadcast_object_list(cached)
        if cached[0] is not None:
            frames.append(cached[0])
            continue
        if isinstance(source, torch.nn.Module):
            model, step = source, None
        else:
            model, step = _load_checkpoint(source, state.device), checkpoint_step(source)
        frame = score_model(model, tokenized, name=name, step=step, batch_size=batch_size,
                            chunk_size=chunk_size, progress=progress, accelerator=state)
        if state.is_main_process:
            write_checkpoint_frame(frame, path)
        frames.append(frame)
        del model
    state.wait_for_everyone()
    return frames


# -------------------------------------------------------------- reference run
def checkpoint_steps(max_steps: int, n_checkpoints: int) -> list[int]:
    """``n_checkpoints`` steps spread evenly over ``1..max_steps``, the last at ``max_steps``."""
    if n_checkpoints < 1:
        raise ValueError(f"n_checkpoints must be >= 1, got {n_checkpoints}")
    if n_checkpoints > max_steps:
        raise ValueError(f"cannot save {n_checkpoints} checkpoints in a run of {max_steps} steps")
    return [int(np.floor(max_steps * (k + 1) / n_checkpoints + 0.5)) for k in range(n_checkpoints)]


class CheckpointSchedule(TrainerCallback):
    """Save checkpoints at chosen optimizer steps (use with ``save_strategy="no"``).

    Either ``n_checkpoints`` spread evenly over the run (computed from
    ``state.max_steps`` when training begins; the last at the end) or explicit
    ``steps``. After training, ``self.steps`` holds the schedule.
    """

    def __init__(self, n_checkpoints: int | None = 3, *, steps=None):
        if (n_checkpoints is None) == (steps is None):
            raise ValueError("give either n_checkpoints or steps")
        self.n_checkpoints = n_checkpoints
        self.steps = None if steps is None else sorted({int(s) for s in steps})

    def on_train_begin(self, args, state, control, **kwargs):
        if self.n_checkpoints is not None:
            self.steps = checkpoint_steps(state.max_steps, self.n_checkpoints)
        elif not self.steps or self.steps[0] < 1 or self.steps[-1] > state.max_steps:
            raise ValueError(f"checkpoint steps {self.steps} must lie in 1..{state.max_steps}")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            control.should_save = True
        return control


def train_reference(model, tokenizer, train_tokenized, config, *, n_checkpoints: int = 3,
                    steps: list[int] | None = None, out_dir, record_online: bool = False,
                    callbacks=None) -> list[str]:
    """Train the reference model with NTP and keep C checkpoints; return their folders.

    Checkpoints: ``n_checkpoints`` spread evenly over the run, or at the optimizer
    ``steps`` given. ``config`` (an :class:`sftmix.SFTMixConfig`) is copied with
    ``method="ntp"``, ``output_dir=out_dir``, ``save_strategy="no"`` and no
    ``save_total_limit``: the :class:`CheckpointSchedule` decides what is saved. With
    ``record_online`` (or ``config.record_dynamics``) a :class:`DynamicsRecorder` writes
    online statistics, one file per epoch, to ``<out_dir>/online``.
    """
    from .trainer import SFTMixTrainer  # the trainer imports this module
    from .training import quiet_progress

    if config.method != "ntp":
        logger.info("the reference run trains with NTP (config has method=%r)", config.method)
    args = dataclasses.replace(config, method="ntp", output_dir=str(out_dir), save_strategy="no",
                               save_total_limit=None)
    schedule = CheckpointSchedule(steps=steps) if steps is not None else CheckpointSchedule(n_checkpoints)
    extra = [schedule, *(callbacks or [])]
    if record_online or config.record_dynamics:
        extra.append(DynamicsRecorder(Path(out_dir) / "online", example_ids=train_tokenized["example_id"]))
    trainer = SFTMixTrainer(model=model, args=args, train_dataset=train_tokenized, processing_class=tokenizer,
                            data_collator=PadCollator(tokenizer.pad_token_id), callbacks=extra)
    quiet_progress(trainer)
    trainer.train()
    dirs = [str(Path(out_dir) / f"checkpoint-{s}") for s in schedule.steps]
    missing = [d for d in dirs if not Path(d).exists()]
    if missing:
        raise RuntimeError(f"the reference run did not save {missing}")
    return dirs


# ----------------------------------------------------------- online recording
class DynamicsRecorder(TrainerCallback):
    """Record per-example statistics from the training forward passes (no extra pass).

    :class:`sftmix.SFTMixTrainer` calls :meth:`observe_batch` with the per-example sums
    of every training micro-batch. A "checkpoint" of statistics is closed at the end of
    each epoch (default) or every ``interval`` optimizer steps (and at the end of
    training if steps are left over); each close is appended to ``self.checkpoints``
    and, with ``out_dir``, written as ``<name>.parquet`` in the format of
    :func:`score_checkpoints`, so :func:`sftmix.dynamics.compute_dynamics` takes either.
    Under several processes the sums are added up over processes at each close.

    How this differs from scoring saved checkpoints:

    * The model moves within a window: each example is scored by the model state of the
      step that trained on it, not by one fixed checkpoint.
    * The model is in training mode, so dropout (if the model has any) is active.
    * Examples not seen since the last close get NaN (e.g. with ``interval`` shorter
      than an epoch); an example seen twice in a window is averaged over both visits.
    * The statistics are those of the training batch, before the step's update.

    Parameters
    ----------
    out_dir : folder for the per-window files, or None to keep them in memory only.
    interval : close every ``interval`` optimizer steps instead of at epoch ends.
    example_ids : ids of the training dataset rows (``example_index`` indexes them);
        read from the training dataloader's dataset when omitted.
    """

    def __init__(self, out_dir=None, *, interval: int | None = None, example_ids=None):
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.interval = interval
        self.example_ids = None if example_ids is None else [str(e) for e in example_ids]
        self.checkpoints = []
        self._sums = None
        self._last_close = 0

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        if self.example_ids is None:
            dataset = getattr(train_dataloader, "dataset", None)
            if dataset is None or "example_id" not in getattr(dataset, "column_names", ()):
                raise ValueError("DynamicsRecorder needs example_ids= (the training dataset's example_id column)")
            self.example_ids = [str(e) for e in dataset["example_id"]]
        self._fingerprint = dataset_fingerprint(self.example_ids)
        self._sums = np.zeros((len(self.example_ids), 4))
        self._last_close = state.global_step

    def observe_batch(self, *, example_index, nll_sum, prob_sum, correct_sum, n_tokens, state=None):
        """Add one micro-batch's per-example sums (tensors of shape (B,))."""
        if example_index is None:
            raise ValueError("the batch has no example_index column (keep it: remove_unused_columns=False)")
        values = torch.stack([x.detach().cpu().double() for x in (nll_sum, prob_sum, correct_sum, n_tokens)], 1)
        np.add.at(self._sums, example_index.cpu().numpy(), values.numpy())

    def on_step_end(self, args, state, control, **kwargs):
        if self.interval is not None and state.global_step % self.interval == 0:
            self._close(state, f"step-{state.global_step}")

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.interval is None:
            self._close(state, f"epoch-{len(self.checkpoints) + 1}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.interval is not None and state.global_step != self._last_close:
            self._close(state, f"step-{state.global_step}")

    def _close(self, trainer_state, name: str) -> None:
        process = PartialState()
        sums = torch.from_numpy(self._sums)
        if process.num_processes > 1:  # each visit happened on one process: add them up
            sums = reduce(sums.to(process.device), reduction="sum").cpu()
        sums = sums.numpy()
        if not sums[:, 3].any():
            logger.warning("DynamicsRecorder saw no statistics before %s: it needs SFTMixTrainer, which calls "
                           "observe_batch from its training forward pass", name)
        frame = checkpoint_frame(self.example_ids, *sums.T, name=name, step=trainer_state.global_step,
                                 fingerprint=self._fingerprint, source="online")
        self.checkpoints.append(frame)
        if self.out_dir is not None and process.is_main_process:
            write_checkpoint_frame(frame, self.out_dir / f"{name}.parquet")
        self._sums = np.zeros_like(self._sums)
        self._last_close = trainer_state.global_step
