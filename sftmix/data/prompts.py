"""Prompts without reference answers, for generation and judge exports (AlpacaEval, MT-Bench).

:func:`load_prompts` reads a local JSON/JSONL/parquet/CSV file whose rows hold a prompt but
maybe no answer, and returns a ``datasets.Dataset`` with ``example_id`` and ``messages``
(the conversation to answer), plus ``response`` when every row has a reference answer.
Accepted rows (first match wins):

* ``messages``: a chat; a final assistant message, if any, is the reference (or else a ``response``
  field: the canonical rows ``sftmix data --out`` writes);
* ``conversations`` (ShareGPT ``from``/``value``): the same;
* ``instruction`` (+ ``input``), with ``output`` as the reference (AlpacaEval's eval set);
* ``prompt``, with ``completion`` or ``response`` as the reference;
* ``turns`` (an MT-Bench question file): the first turn, id ``question_id``.

:func:`has_references` tells whether a file's rows carry reference answers.
"""

from __future__ import annotations

import datasets

from .formats import DataError, example_id_for, read_records

__all__ = ["has_references", "load_prompts"]

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_REFERENCES = ("output", "completion", "response")


def _conversation(record: dict, source: str, row: int) -> list[dict] | None:
    if isinstance(record.get("messages"), list):
        return [{"role": m.get("role"), "content": m.get("content")} for m in record["messages"]]
    if isinstance(record.get("conversations"), list):
        return [{"role": _ROLES.get(m.get("from"), m.get("from")), "content": m.get("value")}
                for m in record["conversations"]]
    return None


def _prompt_row(record: dict, source: str, row: int) -> tuple[str, list[dict], str | None]:
    """(example id, prompt messages, reference or None) of one row."""
    where = f"{source}, row {row}"
    conversation = _conversation(record, source, row)
    reference = None
    if conversation is not None:
        if conversation and conversation[-1]["role"] == "assistant":
            reference = conversation[-1]["content"]
            conversation = conversation[:-1]
        else:  # canonical rows (what `sftmix data --out` writes): the prompt, and the answer as response
            reference = record.get("response")
        messages = conversation
    elif isinstance(record.get("instruction"), str):
        extra = record.get("input")
        text = record["instruction"]
        if isinstance(extra, str) and extra.strip():
            text = f"{text}\n\n{extra}"
        messages, reference = [{"role": "user", "content": text}], record.get("output")
    elif isinstance(record.get("prompt"), str):
        messages = [{"role": "user", "content": record["prompt"]}]
        reference = record.get("completion", record.get("response"))
    elif isinstance(record.get("turns"), list) and record["turns"]:
        messages = [{"role": "user", "content": record["turns"][0]}]
    else:
        raise DataError(f"{where}: no prompt found; expected one of the fields messages, conversations, "
                        "instruction, prompt or turns")
    if not messages or messages[-1]["role"] != "user":
        raise DataError(f"{where}: the conversation must end with a user message to answer")
    for k, message in enumerate(messages):
        if message["role"] not in ("system", "user", "assistant") or not isinstance(message["content"], str) \
                or not message["content"].strip():
            raise DataError(f"{where}, message {k}: needs a role (system/user/assistant) and non-empty text")
    eid = record.get("example_id", record.get("id", record.get("question_id")))
    eid = str(eid) if eid is not None else example_id_for(messages, "")
    return eid, messages, reference if isinstance(reference, str) else None


def load_prompts(path: str) -> datasets.Dataset:
    """Prompts (and references, when every row has one) of a local file; see the module docstring."""
    records = read_records(path)
    if not records:
        raise DataError(f"{path}: contains no rows")
    rows = [_prompt_row(r, str(path), i) for i, r in enumerate(records)]
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for i, eid in enumerate(ids):
            if eid in seen:
                raise DataError(f"{path}, row {i}: duplicate id {eid!r}, also at row {seen[eid]}")
            seen[eid] = i
    data = {"example_id": ids, "messages": [r[1] for r in rows]}
    if all(r[2] is not None for r in rows):
        data["response"] = [r[2] for r in rows]
    return datasets.Dataset.from_dict(data)


def has_references(path: str) -> bool:
    """Whether every row of a local file carries a reference answer (see :func:`load_prompts`)."""
    return "response" in load_prompts(path).column_names
