"""The collator: it only pads (labels are built when the data is tokenized)."""

from __future__ import annotations

import torch

from ..constants import IGNORE_INDEX


class PadCollator:
    """Pad ``input_ids`` (pad id), ``labels`` and ``content_labels`` (``IGNORE_INDEX``) and build
    ``attention_mask``.

    Only the model inputs plus ``example_index`` (and ``content_labels`` when the data has
    them) are batched; text metadata stays in the dataset. Padding is on the right, and
    masked by length, never by token id: with pad == eos (SmolLM2, Llama 3) the real
    end-of-turn labels stay trained.

    ``pad_token_id``: the tokenizer's pad id; give the tokenizer itself
    (:meth:`for_tokenizer`) to fall back to its eos when it has no pad token.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
            raise ValueError(f"PadCollator needs an integer pad token id, got {pad_token_id!r}; the tokenizer has "
                             "no pad token and no eos token to pad with: set tokenizer.pad_token first")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    @classmethod
    def for_tokenizer(cls, tokenizer, pad_to_multiple_of: int | None = None) -> PadCollator:
        """Pad with the tokenizer's pad id, or its eos id when it has no pad token (padding is
        masked out of every loss, so which id fills it does not matter)."""
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls(pad, pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        content = torch.full((n, width), IGNORE_INDEX, dtype=torch.long) if "content_labels" in features[0] else None
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            input_ids[i, :k] = torch.as_tensor(f["input_ids"])
            labels[i, :k] = torch.as_tensor(f["labels"])
            if content is not None:
                content[i, :k] = torch.as_tensor(f["content_labels"])
            attention[i, :k] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        if content is not None:
            batch["content_labels"] = content
        if "example_index" in features[0]:
            batch["example_index"] = torch.as_tensor([f["example_index"] for f in features])
        return batch
