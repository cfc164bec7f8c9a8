"""Generation files in the formats that external judges read.

AlpacaEval 2 scores a model's answers with an LLM judge that cannot run here; this writes our
greedy generations in its input format (a JSON list of ``{"instruction", "output", "generator",
"dataset"}``) so a user with access can score them. MT-Bench's two-turn answers and FastChat
export live in :mod:`sftmix.analysis.mtbench`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write_text

__all__ = ["export_alpaca_eval"]


def export_alpaca_eval(instructions: list[str], outputs: list[str], path, *, generator: str,
                       dataset: str = "sftmix") -> Path:
    """Write an AlpacaEval model-outputs file."""
    if len(instructions) != len(outputs):
        raise ValueError("one output per instruction is needed")
    rows = [{"instruction": i, "output": o, "generator": generator, "dataset": dataset}
            for i, o in zip(instructions, outputs)]
    return atomic_write_text(path, json.dumps(rows, indent=2))

