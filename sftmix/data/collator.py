"""The collator: it only pads (labels are built when the data is tokenized)."""

from __future__ import annotations

import torch

from ..constants import IGNORE_INDEX


class PadCollator:
    """Pad ``input_ids`` (pad id), ``labels`` (``IGNORE_INDEX``) and build ``attention_mask``.

    Only the model inputs plus ``example_index`` are batched; text metadata stays in the
    dataset. Padding is on the right.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            input_ids[i, :k] = torch.as_tensor(f["input_ids"])
            labels[i, :k] = torch.as_tensor(f["labels"])
            attention[i, :k] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        if "example_index" in features[0]:
            batch["example_index"] = torch.as_tensor([f["example_index"] for f in features])
        return batch
