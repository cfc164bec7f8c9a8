"""The weight files of a run directory's model folders, and what ``keep_weights: reference`` removes.

A reference checkpoint or a trained run's folder holds its weights as
:data:`sftmix.io.WEIGHT_PATTERNS` say. With the experiment setting
``keep_weights: reference`` a finished training run's weights are removed once every stage that reads
them has run (:func:`remove_trained_weights`, the experiment's ``tidy`` stages); ``weights_removed.json``
stays in their place, and :func:`sftmix.io.require_weights` turns a later attempt to load them into one
line naming the setting.
"""

from __future__ import annotations

from pathlib import Path

from ..io import WEIGHT_PATTERNS, WEIGHTS_REMOVED_FILE, atomic_write_json

__all__ = ["checkpoint_weights", "remove_trained_weights"]


def checkpoint_weights(checkpoint: Path) -> Path:
    """The weights file of a checkpoint folder (full model or LoRA adapter); ``model.safetensors``
    when there is none (pruned or not yet written)."""
    found = sorted(p for pattern in WEIGHT_PATTERNS for p in Path(checkpoint).glob(pattern))
    return found[0] if found else Path(checkpoint) / "model.safetensors"


def remove_trained_weights(out: Path) -> int:
    """``keep_weights: reference``: delete the final weights of the training run in ``out`` once every stage that
    reads them has run, and say so in ``weights_removed.json``. Returns the bytes freed.

    Only the weight files directly in ``out`` go: its logs, eval.json and generations stay, and so does any
    ``checkpoint-*`` folder (a run being trained resumes from it).
    """
    out, removed, freed = Path(out), [], 0
    for pattern in WEIGHT_PATTERNS:
        for f in sorted(out.glob(pattern)):
            freed += f.stat().st_size if f.stat().st_nlink == 1 else 0
            removed.append(f.name)
            f.unlink()
    atomic_write_json(out / WEIGHTS_REMOVED_FILE, {"removed": removed, "bytes_freed": freed,
                                                   "setting": "keep_weights: reference"})
    return freed
