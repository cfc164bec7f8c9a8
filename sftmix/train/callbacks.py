"""Trainer callbacks: checkpoint schedule, online dynamics recording, a quiet progress bar.

* :class:`CheckpointSchedule` saves the C checkpoints of a reference run.
* :class:`DynamicsRecorder` collects the per-example statistics that
  :func:`sftmix.dynamics.scoring.score_checkpoints` computes, from the training forward
  passes themselves, at no extra forward pass (see its docstring for how that differs).
* :class:`QuietProgress` is the Trainer's progress bar without per-step log lines.
* :class:`LossLines` prints one short loss line per logging step when tqdm is off.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..constants import CONFIDENCE_TOKENS
from ..distributed import Processes
from ..dynamics.sums import TokenSums
from ..dynamics.table import checkpoint_frame, dataset_fingerprint, write_checkpoint_frame

logger = logging.getLogger(__name__)

__all__ = ["CheckpointSchedule", "DynamicsRecorder", "LossLines", "QuietProgress", "checkpoint_steps",
           "quiet_progress"]


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


class DynamicsRecorder(TrainerCallback):
    """Record per-example statistics from the training forward passes (no extra pass).

    :class:`sftmix.SFTMixTrainer` calls :meth:`observe_batch` with the per-example sums
    of every training micro-batch. A "checkpoint" of statistics is closed at the end of
    each epoch (default) or every ``interval`` optimizer steps (and at the end of
    training if steps are left over); each close is appended to ``self.checkpoints``
    and, with ``out_dir``, written as ``<name>.parquet`` in the format of
    :func:`~sftmix.dynamics.scoring.score_checkpoints`, so :func:`~sftmix.dynamics.table.compute_dynamics`
    takes either.
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
    tokens : which response tokens are recorded: ``"content"`` (default, as
        :func:`~sftmix.dynamics.scoring.score_checkpoints`) or ``"trained"``.
    """

    def __init__(self, out_dir=None, *, interval: int | None = None, example_ids=None, tokens: str = "content"):
        if interval is not None and interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        if tokens not in CONFIDENCE_TOKENS:
            raise ValueError(f"tokens={tokens!r}; choose one of {', '.join(CONFIDENCE_TOKENS)}")
        self.tokens = tokens
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
        self._sums = TokenSums.full(len(self.example_ids))
        self._last_close = state.global_step

    def observe_batch(self, *, example_index, state=None, **sums):
        """Add one micro-batch's per-example sums (tensors or arrays of shape (B,)), by name: those of
        :class:`~sftmix.dynamics.sums.TokenSums` (``nll_sum``, ..., ``n_tokens``)."""
        if example_index is None:
            raise ValueError("the batch has no example_index column (keep it: remove_unused_columns=False)")
        batch = TokenSums(**{name: torch.as_tensor(x).detach().cpu().double().numpy() for name, x in sums.items()})
        self._sums.add_at(example_index.cpu().numpy(), batch)

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
        procs = Processes()
        sums = self._sums
        if procs.many:  # each visit happened on one process: add them up
            sums = TokenSums.from_stacked(procs.sum(torch.from_numpy(sums.stacked())).numpy())
        if not sums.n_tokens.any():
            logger.warning("DynamicsRecorder saw no statistics before %s: it needs SFTMixTrainer, which calls "
                           "observe_batch from its training forward pass", name)
        frame = checkpoint_frame(self.example_ids, **sums.as_dict(), name=name, step=trainer_state.global_step,
                                 fingerprint=self._fingerprint, source="online")
        frame.attrs["tokens"] = self.tokens
        self.checkpoints.append(frame)
        if self.out_dir is not None and procs.is_main:
            write_checkpoint_frame(frame, self.out_dir / f"{name}.parquet")
        self._sums = TokenSums.full(len(self.example_ids))
        self._last_close = trainer_state.global_step


def quiet_progress(trainer) -> None:
    """A progress bar, but no dict printed per logging step: the logs go to log_history.json.

    With tqdm off (``disable_tqdm=True``) there is no bar, so :class:`LossLines` prints one
    line per logging step instead.
    """
    printer = trainer.pop_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgress)
    elif printer is not None:
        trainer.add_callback(LossLines)


class LossLines(TrainerCallback):
    """One line per logging step, e.g. ``step 20/100 (epoch 0.40): loss 2.3141, lr 0.001``.

    For runs without a progress bar (``disable_tqdm=True``: logs, notebooks, CI). Each line
    also says the time spent and, from the pace so far, the time left
    (``step 20/100 (epoch 0.40, 0:41 in, ~2:44 left): ...``); a resumed run counts from where
    it resumed.
    """

    def __init__(self):
        self._start: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = (time.monotonic(), state.global_step)

    def _timing(self, state) -> str:
        if self._start is None:
            return ""
        elapsed = time.monotonic() - self._start[0]
        done = state.global_step - self._start[1]
        text = f"{_clock(elapsed)} in"
        if done > 0 and state.max_steps:
            text += f", ~{_clock(elapsed / done * max(state.max_steps - state.global_step, 0))} left"
        return text

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        shown = {k: v for k, v in logs.items() if k in ("loss", "ntp_loss", "mixup_loss", "learning_rate",
                                                        "grad_norm", "eval_loss", "train_loss")}
        if not shown:
            return
        names = {"learning_rate": "lr"}
        parts = [f"{names.get(k, k)} {v:.4g}" if isinstance(v, float) else f"{names.get(k, k)} {v}"
                 for k, v in shown.items()]
        where = [f"epoch {state.epoch:.2f}"] if state.epoch is not None else []
        where += [t] if (t := self._timing(state)) else []
        where = f" ({', '.join(where)})" if where else ""
        print(f"step {state.global_step}/{state.max_steps}{where}: " + ", ".join(parts), flush=True)


def _clock(seconds: float) -> str:
    """``83`` -> ``1:23``, ``3725`` -> ``1:02:05``."""
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


class QuietProgress(ProgressCallback):
    """Trainer progress bar without the per-step log lines."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return
