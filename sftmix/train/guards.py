"""Option combinations known to give a silently wrong result: checked before training starts.

* **Low-precision master weights.** Trainable weights stored in bfloat16 (or float16) and
  updated by a plain optimizer lose every update smaller than half a unit in the last
  place: about 2^-9 of the weight for bfloat16. Measured on SmolLM2-135M (PITFALLS.md):
  after 3 AdamW steps at lr <= 1e-5 only 1.7% of the weights differed from the base
  (99.96% in float32); at the paper's 2e-6 almost nothing trains. Keep float32 master
  weights (load float32 and train with ``bf16=True``, i.e. autocast; FSDP's
  ``mixed_precision``; DeepSpeed keeps its own float32 copy, so it is not flagged).
* **A toy learning rate on a real model.** The shipped tiny models train at 1e-3; the same
  rate wrecks a pretrained model (SmolLM2-135M at 2e-3: held-out exact match 0.375 -> 0.0
  after one epoch). Above :data:`MAX_PRETRAINED_LR` (full fine-tuning) or
  :data:`MAX_LORA_LR` (adapters) on a model of more than :data:`PRETRAINED_PARAMS`
  parameters, training warns.

Both are warnings (:class:`TrainingSetupWarning`), not errors: a researcher may mean it.
"""

from __future__ import annotations

import logging
import warnings

import torch

logger = logging.getLogger(__name__)

__all__ = ["MAX_LORA_LR", "MAX_PRETRAINED_LR", "PRETRAINED_PARAMS", "TrainingSetupWarning", "check_setup"]

#: Models with more parameters than this are treated as pretrained LLMs (tiny-base has 1M).
PRETRAINED_PARAMS = 20_000_000
#: Full fine-tuning of a pretrained model above this rate warns (typical: 1e-6 .. 1e-4).
MAX_PRETRAINED_LR = 5e-4
#: LoRA above this rate warns (typical: 1e-5 .. 1e-3).
MAX_LORA_LR = 5e-3
_LOW = (torch.bfloat16, torch.float16)


class TrainingSetupWarning(UserWarning):
    """A setting that is known to train badly without an error (see the module docstring)."""


def _warn(message: str) -> None:
    logger.warning(message)
    warnings.warn(message, TrainingSetupWarning, stacklevel=3)


def check_setup(model: torch.nn.Module, args) -> list[str]:
    """Warn about low-precision trainable weights and toy learning rates; return the messages."""
    messages = []
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    low = sum(p.numel() for p in trainable if p.dtype in _LOW)
    if low and not getattr(args, "deepspeed", None):
        dtype = next(p.dtype for p in trainable if p.dtype in _LOW)
        messages.append(
            f"{low:,} of {n_trainable:,} trainable parameters are stored in {str(dtype).replace('torch.', '')} and "
            "the optimizer updates them in place: updates below ~2^-9 of a weight are rounded away, so at "
            f"learning_rate={args.learning_rate:g} most weights may never change. Load float32 weights "
            "(torch_dtype=float32) and train with bf16=True (autocast), or use FSDP mixed precision / DeepSpeed, "
            "which keep float32 master weights.")
    total = sum(p.numel() for p in params)
    lora = n_trainable < 0.5 * total
    limit = MAX_LORA_LR if lora else MAX_PRETRAINED_LR
    if total > PRETRAINED_PARAMS and args.learning_rate > limit:
        messages.append(
            f"learning_rate={args.learning_rate:g} is a toy-model rate: {'LoRA on ' if lora else ''}a pretrained "
            f"model of {total / 1e6:.0f}M parameters is usually {'adapted' if lora else 'fine-tuned'} at "
            f"{'1e-5 to 1e-3' if lora else '1e-6 to 1e-4'} (the paper: 2e-6 for 7-14B models; the default is "
            "2e-5); a rate this high can wreck what the model knows.")
    for message in messages:
        _warn(message)
    return messages
