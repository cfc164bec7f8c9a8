"""Per-example embeddings: the model's last hidden states pooled over response tokens.

These are the representations that SFTMix mixes, so they are the space in which the
paper observes that confident and unconfident examples occupy different regions. The
2-D projections live in :mod:`sftmix.analysis.projection`.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..constants import IGNORE_INDEX
from ..data import PadCollator, tokenize_examples
from ..loss.head import forward_hidden

__all__ = ["embed_examples"]


@torch.inference_mode()
def embed_examples(model, tokenizer, examples, *, max_length: int = 512, batch_size: int = 64,
                   pooling: str = "mean", progress: bool = True) -> np.ndarray:
    """Embed canonical (or already tokenized) examples.

    Parameters
    ----------
    pooling : ``"mean"`` averages the hidden states that predict response tokens;
        ``"last"`` takes the state that predicts the final response token.

    Returns
    -------
    ndarray, shape (N, D), float32, in the order of ``examples``.
    """
    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling={pooling!r}; use 'mean' or 'last'")
    tokenized = examples if "input_ids" in examples.column_names else \
        tokenize_examples(examples, tokenizer, max_length=max_length)
    if len(tokenized) != len(examples):
        raise ValueError(f"{len(examples) - len(tokenized)} examples lost their response to truncation; "
                         "raise max_length so every example can be embedded")
    collate = PadCollator.for_tokenizer(tokenizer)
    device = next(model.parameters()).device
    order = np.argsort(tokenized["length"], kind="stable")
    out = None
    was_training = model.training
    model.eval()
    for start in tqdm(range(0, len(order), batch_size), desc="Embedding", disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        batch = collate([tokenized[int(i)] for i in rows])
        hidden = forward_hidden(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
        # The state at t predicts token t+1: response states are those whose next label is kept.
        mask = (batch["labels"][:, 1:] != IGNORE_INDEX).to(device)
        h = hidden[:, :-1].float()
        if pooling == "mean":
            pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        else:
            last = mask.shape[1] - 1 - mask.flip(1).float().argmax(1)
            pooled = h[torch.arange(len(rows), device=device), last]
        if out is None:
            out = np.zeros((len(order), pooled.shape[1]), dtype=np.float32)
        out[rows] = pooled.cpu().numpy()
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
