"""``SFTMixTrainer``: a ``transformers.Trainer`` that trains with NTP or NTP + Mixup.

What it changes in ``Trainer`` and why:

* ``compute_loss`` runs the transformer once (through any DDP/PEFT wrapper) and reads the
  last hidden states; the output head then runs in token chunks (:mod:`sftmix.loss.ce`), so
  no full-vocabulary logits exist for the whole batch. The NTP loss covers every response
  token of the batch; with ``method="sftmix"`` the Mixup loss (:mod:`sftmix.loss.mixup`) reuses
  the same hidden states, so SFTMix costs one extra head pass, not a second forward.
* The training sampler (:class:`PairedSampler`) lays out every batch as two halves: the
  first from the confident set, the second from the unconfident set. Pair ``k`` is
  (``k``, ``k + B/2``). Under ``accelerate`` each process receives whole batches. With
  ``train_sampling_strategy="group_by_length"`` both halves are grouped by length in
  windows of ``length_window`` batches (less padding); NTP batches are grouped the same way.
* Losses are sums divided by the token count of the whole gradient-accumulation step
  (``num_items_in_batch`` for NTP; the Mixup count is computed the same way in
  ``get_batch_samples``), so 2 x batch B equals 1 x batch 2B.
* The NTP and Mixup parts are logged separately as ``ntp_loss`` and ``mixup_loss``.
* Per-example token statistics from the training forward pass are handed to callbacks
  that define ``observe_batch`` (the online dynamics recorder), at no extra cost.
* Before training, :func:`sftmix.train.guards.check_setup` warns about settings known to
  train badly without an error (bf16 master weights under a plain optimizer, a toy learning
  rate on a pretrained model).
* FSDP2: CPU processes are sharded too, where accelerate would train them as DDP
  (:func:`sftmix.distributed.shard_cpu_processes`); with sharded checkpoints the finished
  model is gathered into one weights file (``save_model``). See docs/distributed.md.
* A non-finite loss stops training with a ``FloatingPointError`` at the next log (or
  before the next checkpoint is saved), after writing ``nonfinite_loss.json`` into
  ``output_dir``: the step and example ids of the first batch whose loss was not finite,
  the recent batches, the log history and the trainer state.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from pathlib import Path

import torch
from transformers import Trainer

from ..constants import IGNORE_INDEX
from ..distributed import Processes, full_state_dict, launched_processes, shard_cpu_processes
from ..dynamics.scoring import token_set_sums
from ..dynamics.split import load_split, split_groups
from ..errors import ConfigError
from ..io import atomic_write_json
from ..loss.ce import response_cross_entropy
from ..loss.head import forward_hidden, head_context, output_head, verify_output_head
from ..loss.mixup import count_mixup_positions, mixup_loss, sample_lambdas
from ..recipe import LOSS_VARIANTS, PAIRINGS
from .guards import check_setup
from .sampler import LengthWindowSampler, PairedSampler, pair_rows

__all__ = ["SFTMixTrainer"]


class SFTMixTrainer(Trainer):
    """Trainer for NTP and SFTMix; configure it with :class:`sftmix.SFTMixConfig`."""

    def __init__(self, *args, split: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        launched = launched_processes()
        if launched > 1 and self.args.world_size == 1:
            # Each process would train on all the data and write the same files.
            raise ConfigError(
                f"launched as {launched} processes, but each one trains alone (no process group). On a "
                "machine without GPUs pass use_cpu=True (--use_cpu True) so the processes train together "
                "over gloo.")
        check_setup(self.model, self.args)  # bf16 master weights, toy learning rates: warn before training
        self._verify_head_once()
        # Losses are normalised by the token count of the accumulated step (see module docstring).
        self.model_accepts_loss_kwargs = True
        self._mixup_items: torch.Tensor | None = None
        self._parts = {"ntp_sum": 0.0, "ntp_tokens": 0.0, "mixup_sum": 0.0, "mixup_tokens": 0.0}
        self._micro_step = 0
        # (step, micro-batch number, example_index, loss) of the micro-batches since the last
        # log, kept as tensors (no host sync); bounded, in case logging is off.
        self._recent_batches: collections.deque = collections.deque(maxlen=4096)
        self._batches_seen = 0
        self.groups = None
        if self.args.method == "sftmix":
            if split is None and self.args.split_file is None:
                raise ConfigError("method='sftmix' needs a split: split_file (run `sftmix split` first), or "
                                  "split= passed in memory")
            split = split if split is not None else load_split(self.args.split_file)
            ids = [str(e) for e in self.train_dataset["example_id"]]
            self.groups = split_groups(split, ids, source=self.args.split_file or "split")
            multiple = PAIRINGS[self.args.pairing].batch_multiple
            if self.args.per_device_train_batch_size % multiple:
                raise ValueError(f"pairing={self.args.pairing!r} needs per_device_train_batch_size to be a "
                                 f"multiple of {multiple}, got {self.args.per_device_train_batch_size}")

    def create_accelerator_and_postprocess(self):
        super().create_accelerator_and_postprocess()
        if shard_cpu_processes(self.accelerator, self.args.fsdp_plugin_args):  # FSDP2 on CPU: docs/distributed.md
            self.is_fsdp_enabled = True

    #: Under FSDP with sharded checkpoints, also gather full weights into each checkpoint (the
    #: reference run's checkpoints are scored as models; other checkpoints only resume).
    checkpoint_full_weights: bool = False

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        # FSDP with sharded checkpoints saves no weights here; a finished run keeps full ones (gathered).
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
        if not self.is_fsdp_enabled or plugin.fsdp_version != 2 or "FULL_STATE_DICT" in str(plugin.state_dict_type) \
                or (_internal_call and not self.checkpoint_full_weights):
            return super().save_model(output_dir, _internal_call)
        state_dict = full_state_dict(self.model, keep=self.args.should_save)  # collective: every process calls it
        if self.args.should_save:
            self._save(output_dir or self.args.output_dir, state_dict=state_dict)

    # -- data ------------------------------------------------------------------------
    def _verify_head_once(self) -> None:
        """Fail before training when ``output_head`` does not reproduce the model's own logits (a family
        with unknown logit post-processing would otherwise train the wrong loss): one forward pass of
        the first training example's first 16 tokens, in eval mode (no dropout, so no random numbers
        drawn). Skipped under FSDP and DeepSpeed, whose parameters are sharded outside the training step."""
        if self.is_fsdp_enabled or self.is_deepspeed_enabled or self.train_dataset is None or \
                not hasattr(self.train_dataset, "__getitem__") or len(self.train_dataset) == 0:
            return
        device = next(self.model.parameters()).device
        first = torch.as_tensor(self.train_dataset[0]["input_ids"][:16], device=device)[None]
        verify_output_head(self.model, first)

    def _get_train_sampler(self, train_dataset=None):
        data = train_dataset if train_dataset is not None else self.train_dataset
        lengths = None
        if self.args.train_sampling_strategy == "group_by_length":  # less padding, see PairedSampler
            lengths = (list(data[self.args.length_column_name])
                       if self.args.length_column_name in getattr(data, "column_names", ())
                       else [len(data[i]["input_ids"]) for i in range(len(data))])
        bs, seed, window = self.args.per_device_train_batch_size, self.args.seed, self.args.length_window
        if self.groups is None:
            if lengths is None:
                return super()._get_train_sampler(train_dataset)
            return LengthWindowSampler(lengths, bs, window=window, seed=seed)
        conf, unconf = self.groups
        if PAIRINGS[self.args.pairing].pooled:  # both halves from all examples
            return PairedSampler(conf + unconf, None, bs, seed=seed, lengths=lengths, window=window)
        return PairedSampler(conf, unconf, bs, seed=seed, lengths=lengths, window=window)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._mixup_items = None
        if self.groups is not None and num_items is not None and batches:
            count = sum(self._count_mixup(b["labels"]) for b in batches)
            count = torch.as_tensor(count, device=device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                count = self.accelerator.gather(count).sum()
            self._mixup_items = count
        return batches, num_items

    def _count_mixup(self, labels: torch.Tensor) -> int:
        a, b = pair_rows(labels.shape[0], self.args.pairing, labels)
        return int(count_mixup_positions(labels[a], labels[b], self.args.mixup_alignment))

    # -- loss ------------------------------------------------------------------------
    def mixup_lambdas(self, index: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """One Beta(alpha, alpha) draw per pair, keyed by (seed, epoch, pair's example ids).

        Keying by the pair rather than by the batch makes the draw independent of how the
        step is cut into micro-batches or processes, and reproducible on resume.
        """
        alpha, epoch = self.args.mixup_alpha, int(self.state.epoch or 0)
        if index is None:  # no example ids: fall back to the step counter
            seed = self.args.seed * 1_000_003 + self.state.global_step * 1009 + self._micro_step
            return sample_lambdas(len(a), alpha, generator=torch.Generator().manual_seed(seed))
        keys = (index[a].long() * 1_000_003 + index[b].long()).tolist()
        base = (self.args.seed * 7_919 + epoch) * 2_147_483_647
        return torch.cat([sample_lambdas(1, alpha, generator=torch.Generator().manual_seed((base + k) % 2**63))
                          for k in keys])

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        index = inputs.pop("example_index", None)
        labels = inputs.pop("labels")
        content = inputs.pop("content_labels", None)  # which trained tokens are content (online dynamics)
        hidden = forward_hidden(model, inputs["input_ids"], inputs.get("attention_mask"))
        with head_context(model, self.accelerator):
            return self._losses(model, hidden, labels, index, return_outputs, num_items_in_batch, content)

    def _losses(self, model, hidden, labels, index, return_outputs, num_items_in_batch, content=None):
        head = output_head(model)
        observers = [cb for cb in self.callback_handler.callbacks if hasattr(cb, "observe_batch")]
        record = bool(observers) and model.training
        ntp, mask = response_cross_entropy(hidden, labels, head, chunk_size=self.args.ce_chunk_size,
                                           return_stats=record)
        n_tokens = mask.sum()
        ntp_loss = ntp.loss_sum / (num_items_in_batch if num_items_in_batch is not None else n_tokens.clamp(min=1))
        loss = ntp_loss
        self._add_part("ntp", ntp.loss_sum, n_tokens)

        if self.groups is not None and model.training:
            a, b = pair_rows(labels.shape[0], self.args.pairing, labels)
            lam = self.mixup_lambdas(index.cpu() if index is not None else None, a, b).to(hidden.device)
            mix = mixup_loss(hidden[a], labels[a], hidden[b], labels[b], lam, head,
                             alignment=self.args.mixup_alignment, chunk_size=self.args.ce_chunk_size)
            denom = self._mixup_items if (self._mixup_items is not None and num_items_in_batch is not None) \
                else mix.num_positions.clamp(min=1)
            mixup = mix.loss_sum / denom
            self._add_part("mixup", mix.loss_sum, mix.num_positions)
            loss = LOSS_VARIANTS[self.args.loss_variant].combine(ntp_loss, mixup, self.args.mixup_weight)
        if model.training:
            self._micro_step += 1

        if record:
            content_mask = content[:, 1:] != IGNORE_INDEX if content is not None else None
            self._observe(observers, index, ntp.token_nll, ntp.token_correct, mask, content_mask)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None and model.training:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        return (loss, {"loss": loss.detach()}) if return_outputs else loss

    def _add_part(self, name: str, loss_sum: torch.Tensor, count: torch.Tensor) -> None:
        # Kept as tensors (no host sync per step); read once per logging step.
        if self.model.training:
            self._parts[f"{name}_sum"] = self._parts[f"{name}_sum"] + loss_sum.detach().double()
            self._parts[f"{name}_tokens"] = self._parts[f"{name}_tokens"] + count.double()

    def _observe(self, observers, index, token_nll, token_correct, mask, content_mask=None) -> None:
        wanted = {getattr(cb, "tokens", "trained") for cb in observers}
        if "content" in wanted and content_mask is None:
            raise ValueError("the online recorder scores content tokens, but the batch has no "
                             "content_labels (tokenize with sftmix.data.tokenize_examples)")
        sums = token_set_sums(token_nll, token_correct, mask, content_mask, sets=wanted)
        for cb in observers:
            cb.observe_batch(example_index=index, **sums[getattr(cb, "tokens", "trained")].as_dict(),
                             state=self.state)

    # -- non-finite losses ------------------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None):
        index = inputs.get("example_index")  # read before compute_loss pops it
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._batches_seen += 1
        self._recent_batches.append((self.state.global_step + 1, self._batches_seen, index, loss))
        return loss

    def _count_nonfinite(self) -> torch.Tensor:
        """Micro-batches since the last log whose loss was not finite (a tensor: no sync)."""
        if not self._recent_batches:
            return torch.zeros((), dtype=torch.float64, device=self.args.device)
        losses = torch.stack([r[3].detach().float().reshape(()).to(self.args.device) for r in self._recent_batches])
        return (~torch.isfinite(losses)).sum().double()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Every process logs at the same points, so the reduction below is collective.
        parts = torch.stack([torch.as_tensor(self._parts[k], dtype=torch.float64, device=self.args.device)
                             for k in ("ntp_sum", "ntp_tokens", "mixup_sum", "mixup_tokens")]
                            + [self._count_nonfinite()])
        if self.args.world_size > 1:
            parts = self.accelerator.reduce(parts, reduction="sum")
        if "loss" in logs:
            if parts[1] > 0:
                logs["ntp_loss"] = round(float(parts[0] / parts[1]), 6)
            if parts[3] > 0:
                logs["mixup_loss"] = round(float(parts[2] / parts[3]), 6)
            self._parts = dict.fromkeys(self._parts, 0.0)
        # The Trainer replaces a non-finite "loss" by the running mean (logging_nan_inf_filter),
        # so the per-batch losses and the NTP/Mixup parts are checked as well.
        bad = [f"{key}={logs[key]}" for key in ("loss", "ntp_loss", "mixup_loss")
               if isinstance(logs.get(key), float) and not math.isfinite(logs[key])]
        if bad or parts[4] > 0:
            super().log(logs, start_time)
            self._stop_on_nonfinite(f"non-finite {', '.join(bad) or 'training loss'} at step "
                                    f"{self.state.global_step}")
        self._recent_batches.clear()
        super().log(logs, start_time)

    def _save_checkpoint(self, model, trial):
        # Never save weights that a non-finite loss has already reached (a resume would start from them).
        bad = self._count_nonfinite()
        if self.args.world_size > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        if bad > 0:
            self._stop_on_nonfinite(f"non-finite training loss before saving the checkpoint of step "
                                    f"{self.state.global_step}")
        return super()._save_checkpoint(model, trial)

    def _stop_on_nonfinite(self, what: str) -> None:
        """Write ``nonfinite_loss.json`` (main process) and raise ``FloatingPointError`` (every process)."""
        rank = self.args.process_index
        records = [{"step": int(step), "micro_batch": int(k), "process": rank, "loss": float(loss),
                    "example_index": None if index is None else [int(i) for i in index.tolist()]}
                   for step, k, index, loss in self._recent_batches]
        records = Processes(self.accelerator).gather(records)
        records.sort(key=lambda r: (r["micro_batch"], r["process"]))
        for r in records:
            r["example_ids"] = self._example_ids(r["example_index"])
        first = next((r for r in records if not math.isfinite(r["loss"])), None)
        path = Path(self.args.output_dir) / "nonfinite_loss.json"
        if first is None:
            where = "no batch of the last window had a non-finite loss itself (the weights diverged earlier)"
        else:
            ids = first["example_ids"] or first["example_index"] or ["(no example_index column)"]
            shown = ", ".join(map(str, ids[:8])) + (f", ... ({len(ids)} in all)" if len(ids) > 8 else "")
            where = (f"the first non-finite training loss was at step {first['step']} (micro-batch "
                     f"{first['micro_batch']}, process {first['process']}), on the batch of examples [{shown}]")
        message = (f"{what}; {where}. The log history, the trainer state and the example ids of the recent "
                   f"batches are in {path}. Lower the learning rate, check those examples, or keep "
                   f"max_grad_norm > 0.")
        if self.is_world_process_zero():
            atomic_write_json(path, _strict_json({
                "message": message, "step": self.state.global_step, "first_nonfinite_batch": first,
                "recent_batches": records, "log_history": self.state.log_history,
                "trainer_state": dataclasses.asdict(self.state), "training_args": self.args.to_dict()}))
        raise FloatingPointError(message)

    def _example_ids(self, index) -> list[str] | None:
        dataset = self.train_dataset
        if index is None or dataset is None or "example_id" not in getattr(dataset, "column_names", ()):
            return None
        return [str(e) for e in dataset.select_columns(["example_id"])[list(index)]["example_id"]]


def _strict_json(obj):
    """``obj`` with non-finite floats as strings ("nan", "inf"), so any JSON reader accepts it."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    return obj
