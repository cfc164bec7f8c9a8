"""Thin adapters that bring sftmix to other trainers; they call sftmix's core, never re-implement it.

* :class:`DynamicsCallback` (:mod:`.callback`): a data map (dynamics table + split) of any
  ``transformers.Trainer`` run, TRL's ``SFTTrainer`` included.
* :class:`SFTMixTRLTrainer` / :class:`SFTMixTRLConfig` (:mod:`.trl`): SFTMix inside ``trl.SFTTrainer``.
* :func:`with_example_ids` (:mod:`.data`): the ids both runs are keyed by.

Names are imported lazily: the TRL adapter imports ``trl`` (needs ``pip install trl``), the others do not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {"DynamicsCallback": "callback", "SFTMixTRLConfig": "trl", "SFTMixTRLTrainer": "trl",
            "ExampleIndexCollator": "trl", "with_example_ids": "data", "trained_tokens": "data"}

if TYPE_CHECKING:
    from .callback import DynamicsCallback
    from .data import trained_tokens, with_example_ids
    from .trl import ExampleIndexCollator, SFTMixTRLConfig, SFTMixTRLTrainer

__all__ = ["DynamicsCallback", "ExampleIndexCollator", "SFTMixTRLConfig", "SFTMixTRLTrainer", "trained_tokens",
           "with_example_ids"]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = _EXPORTS[name]
        if module == "trl":
            try:
                import trl  # noqa: F401
            except ImportError as err:
                raise ImportError(f"sftmix.{name} needs TRL: pip install 'trl==1.16.0'") from err
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sftmix.integrations' has no attribute {name!r}")
