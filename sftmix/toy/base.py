"""The shipped tiny pretrained base model (``tiny-base``): where it lives and how it loads.

``sftmix pretrain`` made it (see ``base/pretrain.json`` for the command, seed, steps, wall
time, tokens and final loss). It is a ~1M-parameter Llama that has read the toy world's
plain text (:mod:`sftmix.toy.world`) but never the chat template or the suite's
instruction wordings, the way the paper's base models have read the web but not the
SFT set. Loading checks the weights against the recorded SHA-256 so a damaged or
hand-edited copy fails loudly instead of silently changing every result.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io import sha256_of

BASE_NAME = "tiny-base"
BASE_DIR = Path(__file__).resolve().parent / "base"
WEIGHTS = "model.safetensors"


def base_record() -> dict:
    """How the shipped weights were made (``pretrain.json``)."""
    return json.loads((BASE_DIR / "pretrain.json").read_text())


def base_model_dir(*, verify: bool = True) -> Path:
    """The folder of the shipped base (a Hugging Face model folder); checks its checksum."""
    weights = BASE_DIR / WEIGHTS
    if not weights.exists():
        raise FileNotFoundError(f"the shipped base model is missing ({weights}); reinstall sftmix, or "
                                "recreate it with `sftmix pretrain --out <dir>` and pass that folder")
    if verify:
        expected = (BASE_DIR / "SHA256").read_text().split()[0]
        actual = sha256_of(weights)
        if actual != expected:
            raise ValueError(f"{weights} does not match its recorded SHA-256 ({actual[:12]}... != "
                             f"{expected[:12]}...): the file was changed or damaged; reinstall sftmix")
    return BASE_DIR


def load_base_model(**kwargs):
    """The shipped base as a ``LlamaForCausalLM`` (float32, CPU)."""
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(base_model_dir(), use_safetensors=True, **kwargs)
