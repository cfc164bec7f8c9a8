"""``DynamicsCallback``: a data map of any ``transformers.Trainer`` run (TRL's ``SFTTrainer`` included).

Added to a trainer, it scores every training example's trained tokens with the model as it
is at each epoch end (or every ``interval`` optimizer steps), with sftmix's scorer
(:func:`sftmix.dynamics.scoring.score_model`: one transformer pass per batch, the output head
in token chunks), and keeps a run directory that sftmix's figures, notebooks and explorers
read as they read their own (:class:`sftmix.io.RunDir`)::

    <out_dir>/reference/scores/<name>.parquet   one file per scoring point (epoch-1, step-200, ...)
    <out_dir>/dynamics.parquet                  the dynamics table over the points so far
    <out_dir>/split.json                        the confident / unconfident halves

The numbers are those :func:`sftmix.score_checkpoints` computes on checkpoints saved at the same
steps (a test checks it). Which tokens count is what the trainer trains (see
:func:`sftmix.integrations.data.trained_tokens`): TRL's ``labels`` (built from
``completion_mask`` / ``assistant_masks``), sftmix's ``labels``, or the masks themselves.

How it differs from :class:`sftmix.DynamicsRecorder`, which records statistics from
``SFTMixTrainer``'s own training forward passes at no extra cost: this callback works with
any trainer, costs one inference pass over the training set per scoring point, and scores
every example with one fixed model (as scoring saved checkpoints does), in eval mode.
"""

from __future__ import annotations

import logging

import datasets
import pandas as pd
from transformers import TrainerCallback

from ..distributed import Processes
from ..dynamics.scoring import score_model
from ..dynamics.split import save_split, split_by_confidence
from ..dynamics.table import (
    compute_dynamics,
    dataset_fingerprint,
    read_checkpoint_frames,
    save_dynamics,
    write_checkpoint_frame,
)
from ..io import RunDir
from ..recipe import SPLIT_METRICS
from .data import ID_COLUMN, trained_tokens

logger = logging.getLogger(__name__)

__all__ = ["DynamicsCallback"]


class DynamicsCallback(TrainerCallback):
    """Score every training example at each epoch end (or every ``interval`` steps); write a data map.

    Parameters
    ----------
    out_dir : the run directory to write (see the module docstring).
    dataset : the tokenized data the trainer trains on, with an id column. For TRL pass
        ``trainer.train_dataset`` (prepared by the trainer; ``remove_unused_columns`` strips the
        id column from the dataloader's copy only). Default: the training dataloader's dataset.
    id_column : the column of example ids; ``None`` numbers the rows of ``dataset``.
    interval : score every ``interval`` optimizer steps instead of at epoch ends (and at the end
        of training when steps are left over).
    batch_size, chunk_size : examples per forward pass; tokens per output-head chunk.
    ratio, metric : the split written after each scoring point (:func:`sftmix.split_by_confidence`).
    model_name : recorded in ``dynamics.parquet`` (default: the model's ``name_or_path``).

    After training, ``self.frames`` holds the per-point frames and ``self.table`` the table. A run resumed from
    a checkpoint keeps the points ``out_dir`` holds up to the checkpoint's step.
    """

    def __init__(self, out_dir, dataset: datasets.Dataset | None = None, *, id_column: str | None = ID_COLUMN,
                 interval: int | None = None, batch_size: int = 16, chunk_size: int = 4096, ratio: float = 0.5,
                 metric: str = "confidence", model_name: str | None = None, progress: bool = False):
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1 optimizer step, got {interval}")
        if metric not in SPLIT_METRICS:
            raise ValueError(f"metric={metric!r}; choose one of {', '.join(SPLIT_METRICS)}")
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must lie strictly between 0 and 1, got {ratio}")
        self.run = RunDir(out_dir)
        self.dataset, self.id_column, self.interval = dataset, id_column, interval
        self.batch_size, self.chunk_size, self.progress = batch_size, chunk_size, progress
        self.ratio, self.metric, self.model_name = ratio, metric, model_name
        self.data: datasets.Dataset | None = None  # the scoring form: example_id, input_ids, labels
        self.frames: list = []
        self.table = None
        self._last_step: int | None = None

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if getattr(args, "fsdp", None) or getattr(args, "deepspeed", None):
            raise ValueError("DynamicsCallback scores with the whole model on each process; under FSDP or DeepSpeed "
                             "save checkpoints and score them with sftmix.score_checkpoints instead")
        dataset = self.dataset if self.dataset is not None else getattr(train_dataloader, "dataset", None)
        if not isinstance(dataset, datasets.Dataset):
            raise ValueError("DynamicsCallback needs the training data as a datasets.Dataset: pass "
                             "DynamicsCallback(out_dir, dataset=trainer.train_dataset)")
        self.data = trained_tokens(dataset, id_column=self.id_column)
        self._metadata = _metadata(dataset, self.id_column)
        self.frames = self._earlier_frames(state.global_step)
        if self.model_name is None:
            self.model_name = str(getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__)
        self._last_step = state.global_step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.interval is not None and state.global_step % self.interval == 0:
            self.score(model, state, f"step-{state.global_step}")

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if self.interval is None:
            self.score(model, state, f"epoch-{len(self.frames) + 1}")

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.interval is not None and state.global_step != self._last_step:
            self.score(model, state, f"step-{state.global_step}")

    def _earlier_frames(self, step: int) -> list:
        """On resume (``step`` > 0), the points this run directory already holds for this data, up to ``step``."""
        if step == 0 or not self.run.scores.exists():
            return []
        fingerprint = dataset_fingerprint(self.data[ID_COLUMN])
        return [f for f in read_checkpoint_frames(self.run.scores)
                if f.attrs.get("fingerprint") == fingerprint and (f.attrs.get("step") or 0) <= step]

    def score(self, model, state, name: str) -> None:
        """Score the training set with ``model`` now; rewrite the table and the split."""
        procs = Processes()
        frame = score_model(model, self.data, name=name, step=state.global_step, batch_size=self.batch_size,
                            chunk_size=self.chunk_size, progress=self.progress, tokens="trained")
        self.frames.append(frame)
        self._last_step = state.global_step
        self.table = compute_dynamics(self.frames, examples=self._metadata)
        if procs.is_main:
            write_checkpoint_frame(frame, self.run.scores / f"{name}.parquet")
            save_dynamics(self.table, self.run.dynamics, fingerprint=dataset_fingerprint(self.data[ID_COLUMN]),
                          model_name=self.model_name, checkpoints=[f.attrs["name"] for f in self.frames])
            save_split(split_by_confidence(self.table, self.ratio, self.metric), self.run.split)
        logger.info("DynamicsCallback: scored %d examples at %s (step %d) into %s", len(frame), name,
                    state.global_step, self.run.root)


def _metadata(dataset: datasets.Dataset, id_column: str | None):
    """``example_id`` plus the dataset's scalar columns (task, source, ...): carried into the table."""
    scalar = [c for c, f in dataset.features.items() if isinstance(f, datasets.Value) and c != id_column
              and c not in ("example_index", "length", "seq_lengths", ID_COLUMN)]
    ids = ([str(i) for i in range(len(dataset))] if id_column is None else [str(e) for e in dataset[id_column]])
    frame = dataset.select_columns(scalar).to_pandas() if scalar else pd.DataFrame(index=range(len(ids)))
    return frame.assign(**{ID_COLUMN: ids})
