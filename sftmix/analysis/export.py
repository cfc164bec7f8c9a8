"""Generation files in the formats that external judges read.

Instruction-following benchmarks (AlpacaEval 2, MT-Bench) score a model's answers with
an LLM judge that cannot run here. These functions write our greedy generations in the
judges' input formats so a user with access can score them:

* AlpacaEval: a JSON list of ``{"instruction", "output", "generator", "dataset"}``.
* MT-Bench (FastChat ``llm_judge``): JSON lines of ``{"question_id", "answer_id",
  "model_id", "choices": [{"index": 0, "turns": [...]}], "tstamp"}``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ..io import atomic_write_text

__all__ = ["export_alpaca_eval", "export_mt_bench"]


def export_alpaca_eval(instructions: list[str], outputs: list[str], path, *, generator: str,
                       dataset: str = "sftmix") -> Path:
    """Write an AlpacaEval model-outputs file."""
    if len(instructions) != len(outputs):
        raise ValueError("one output per instruction is needed")
    rows = [{"instruction": i, "output": o, "generator": generator, "dataset": dataset}
            for i, o in zip(instructions, outputs)]
    return atomic_write_text(path, json.dumps(rows, indent=2))


def export_mt_bench(question_ids: list, turns: list[list[str]], path, *, model_id: str) -> Path:
    """Write an MT-Bench answer file (one JSON object per line)."""
    if len(question_ids) != len(turns):
        raise ValueError("one list of turns per question is needed")
    lines = []
    for qid, answer_turns in zip(question_ids, turns):
        answer_id = hashlib.sha1(f"{model_id}-{qid}".encode()).hexdigest()[:22]
        lines.append(json.dumps({"question_id": qid, "answer_id": answer_id, "model_id": model_id,
                                 "choices": [{"index": 0, "turns": list(answer_turns)}], "tstamp": time.time()}))
    return atomic_write_text(path, "\n".join(lines) + "\n")
