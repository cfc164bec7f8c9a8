"""SFTMix inside TRL: ``SFTMixTRLTrainer`` (a ``trl.SFTTrainer``) and ``SFTMixTRLConfig`` (a ``trl.SFTConfig``).

A TRL script keeps its data preparation (chat templates, ``assistant_only_loss``,
``completion_only_loss``, truncation), its collator, model loading, PEFT and accelerate set-up;
the training step becomes sftmix's: :class:`sftmix.SFTMixTrainer`'s paired sampler
(:class:`sftmix.train.sampler.PairedSampler`), its loss (NTP on the trained tokens plus
``mu`` x the Mixup loss of :mod:`sftmix.loss.mixup` on the last hidden states of
confident/unconfident pairs), its ``ntp_loss`` / ``mixup_loss`` logs and its non-finite guard.
The class is ``SFTMixTrainer`` and ``SFTTrainer`` combined (in that order), so the recipe is
sftmix's code, not a copy: this module only connects TRL's data to it.

What TRL does that this changes:

* ``compute_loss``: TRL's runs its fused LM head (``model.forward`` patched to take
  ``fused_lm_head=True`` and return per-token log-probabilities, no logits, no hidden states),
  and ``compute_loss_func`` runs after the forward, too late to mix hidden states. sftmix calls
  the model without ``fused_lm_head``, so the patched forward falls through to the model's own;
  a hook on the decoder reads the last hidden state (the LM head's input), and the head runs in
  token chunks on the trained tokens (NTP) and on the mixed states (Mixup). TRL's
  ``entropy`` / ``mean_token_accuracy`` metrics are not logged.
* The example ids: TRL prepares the dataset it is given and the Trainer's
  ``remove_unused_columns`` keeps only the model's inputs. The id column rides through
  preparation (``SFTMixTRLConfig.id_column``); after it, each prepared row gets an
  ``example_index`` that is kept as a model input and added to each batch by a collator wrapper.

Refused with one line, because they would train something else without an error: packing and
padding-free batches (pairs need whole, separate examples), ``loss_type`` other than ``"nll"``,
Liger's fused linear cross-entropy, label smoothing, ``compute_loss_func``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import datasets
import torch
from transformers import Trainer
from trl import SFTConfig, SFTTrainer

from ..config import SFTMixConfig, check_recipe
from ..errors import ConfigError, SplitError
from ..train.trainer import SFTMixTrainer
from .data import ID_COLUMN, with_example_ids

__all__ = ["ExampleIndexCollator", "SFTMixTRLConfig", "SFTMixTRLTrainer"]


def _recipe_field(name: str, **default):
    """A field of :class:`sftmix.SFTMixConfig`, same default and help (one definition of the recipe)."""
    f = SFTMixConfig.__dataclass_fields__[name]
    return field(default=default.get("default", f.default), metadata=dict(f.metadata))


@dataclass
class SFTMixTRLConfig(SFTConfig):
    """TRL's ``SFTConfig`` (its defaults kept) plus the SFTMix recipe's fields of :class:`sftmix.SFTMixConfig`."""

    method: str = field(default="sftmix", metadata={
        "help": "'sftmix' (NTP + Mixup regulariser; the default here) or 'ntp' (plain next-token prediction on the "
                "trained tokens, as SFTTrainer)."})
    mixup_alpha: float = _recipe_field("mixup_alpha")
    mixup_weight: float = _recipe_field("mixup_weight")
    loss_variant: str = _recipe_field("loss_variant")
    split_file: str | None = _recipe_field("split_file")
    pairing: str = _recipe_field("pairing")
    mixup_alignment: str = _recipe_field("mixup_alignment")
    ce_chunk_size: int = _recipe_field("ce_chunk_size")
    length_window: int = _recipe_field("length_window")
    id_column: str = field(default=ID_COLUMN, metadata={
        "help": "The training dataset's column of example ids, the ids the split holds (sftmix.with_example_ids adds "
                "row numbers as 'example_id')."})

    def __post_init__(self):
        check_recipe(self)
        try:
            super().__post_init__()
        except ValueError as exc:  # SFTConfig's and TrainingArguments' own checks: a config error too
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(" ".join(str(exc).split())) from exc
        if self.packing or self.padding_free:
            raise ConfigError("SFTMix pairs whole examples within a batch: set packing=False and padding_free=False")
        if self.loss_type != "nll":
            raise ConfigError(f"loss_type={self.loss_type!r}: SFTMixTRLTrainer trains sftmix's NTP (+ Mixup) loss, "
                              "which is loss_type='nll'")
        if self.use_liger_kernel and (self.liger_kernel_config or {}).get("fused_linear_cross_entropy"):
            raise ConfigError("Liger's fused_linear_cross_entropy computes the loss inside the model and returns no "
                              "hidden states to mix: leave it off")
        if self.label_smoothing_factor:
            raise ConfigError(f"label_smoothing_factor={self.label_smoothing_factor}: sftmix's loss has no label "
                              "smoothing; set it to 0")


class ExampleIndexCollator:
    """Wraps a collator (TRL's pads only ``input_ids`` / ``labels``) and adds the rows' ``example_index``."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collate(features)
        if features and "example_index" in features[0]:
            batch["example_index"] = torch.as_tensor([f["example_index"] for f in features])
        return batch


class SFTMixTRLTrainer(SFTMixTrainer, SFTTrainer):
    """``trl.SFTTrainer`` that trains with sftmix's NTP or SFTMix loss; configure it with :class:`SFTMixTRLConfig`.

    Takes ``SFTTrainer``'s arguments, plus ``split=`` (a split dict in memory, instead of
    ``args.split_file``).
    """

    def __init__(self, model, args: SFTMixTRLConfig | None = None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, *, split: dict | None = None, **kwargs):
        if not isinstance(args, SFTMixTRLConfig):
            raise ConfigError(f"SFTMixTRLTrainer needs an SFTMixTRLConfig (SFTConfig plus the recipe's fields), got "
                              f"{type(args).__name__}")
        if kwargs.get("compute_loss_func") is not None:
            raise ConfigError("compute_loss_func would be ignored: SFTMixTRLTrainer computes its own loss")
        train_dataset = _with_ids(train_dataset, args)
        super().__init__(model, args, data_collator, train_dataset, eval_dataset, processing_class, split=split,
                         **kwargs)
        # The row of each prepared example: the sampler's rows, the key of the Mixup draws and of online dynamics.
        data = self.train_dataset
        if "example_index" in data.column_names:
            data = data.remove_columns("example_index")
        self.train_dataset = data.add_column("example_index", list(range(len(data))))
        self.data_collator = ExampleIndexCollator(self.data_collator)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "example_index" not in self._signature_columns:  # kept by remove_unused_columns
            self._signature_columns = [*self._signature_columns, "example_index"]

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # TRL's asks compute_loss for model outputs with logits; sftmix's loss makes no logits.
        return Trainer.prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=ignore_keys)


def _with_ids(dataset, args: SFTMixTRLConfig):
    """The training data with ``example_id`` taken from ``args.id_column`` (checked before TRL prepares it)."""
    if not isinstance(dataset, datasets.Dataset):
        raise ConfigError(f"SFTMixTRLTrainer draws its own paired batches: train_dataset must be a datasets.Dataset, "
                          f"got {type(dataset).__name__}")
    if args.id_column in dataset.column_names:
        return dataset if args.id_column == ID_COLUMN else with_example_ids(dataset, source=args.id_column)
    if args.method == "sftmix":
        raise SplitError(f"the training dataset has no {args.id_column!r} column, so no example can be found in the "
                         "split: give it the ids of the reference run (sftmix.with_example_ids(dataset) before both "
                         "runs) or set id_column")
    return dataset
