"""From data on disk (or the built-in suite, or the Hub) to tokenized training examples.

Three steps, each a plain function:

1. :func:`load_examples` reads a source and returns *canonical examples*: a
   ``datasets.Dataset`` with ``example_id`` (str), ``messages`` (the prompt as chat
   messages), ``response`` (str) and any extra metadata columns (``task``, ...).
   Accepted formats: Alpaca (``instruction``/``input``/``output``), chat (``messages``
   with roles; the last assistant turn is the response), ``prompt``/``completion`` and
   ``prompt``/``response``. Bad rows raise :class:`DataError` naming file, row and field.
2. :func:`tokenize_examples` renders each example with the tokenizer's chat template and
   builds ``labels`` equal to ``input_ids`` on response tokens and -100 elsewhere. The
   response mask comes from character offsets of the rendered prompt versus the rendered
   prompt + response, never from searching for template markers.
3. :class:`PadCollator` only pads.

Truncation policy: sequences longer than ``max_length`` lose tokens from the end (the
tail of the response). An example with no response token left is dropped; both counts
are reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa
import torch

logger = logging.getLogger(__name__)

FORMATS = ("alpaca", "chat", "prompt_completion", "prompt_response")
BUILTIN = "builtin"
_REQUIRED = {
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "prompt_response": ("prompt", "response"),
}
_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
# Used for base models whose tokenizer has no chat template.
FALLBACK_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"


class DataError(ValueError):
    """Bad input data; the message names the file, row and field."""


def _where(source: str, row: int | None = None, field_name: str | None = None) -> str:
    parts = [str(source)]
    if row is not None:
        parts.append(f"row {row}")
    if field_name is not None:
        parts.append(f"field {field_name!r}")
    return ", ".join(parts)


def detect_format(columns, source: str = "<data>") -> str:
    """Name the format from column names; raise :class:`DataError` if none fits."""
    cols = set(columns)
    for fmt in ("chat", "alpaca", "prompt_completion", "prompt_response"):
        if set(_REQUIRED[fmt]) <= cols:
            return fmt
    raise DataError(
        f"{source}: cannot tell the data format from columns {sorted(cols)}; expected one of "
        + "; ".join(f"{fmt}: {', '.join(req)}" for fmt, req in _REQUIRED.items()))


def example_id_for(messages: list[dict], response: str) -> str:
    """A stable id derived from content, for data that brings none."""
    blob = json.dumps([messages, response], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def _text(value, source, row, name, *, allow_empty=False) -> str:
    if not isinstance(value, str):
        raise DataError(f"{_where(source, row, name)}: expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(f"{_where(source, row, name)}: is empty")
    return value


def _canonical_row(record: dict, fmt: str, source: str, row: int) -> tuple[list[dict], str]:
    for name in _REQUIRED[fmt]:
        if name not in record or record[name] is None:
            other = [f for f, req in _REQUIRED.items()
                     if f != fmt and all(record.get(k) is not None for k in req)]
            hint = f"; this row looks like format {other[0]!r}: one file must use one format" if other else ""
            raise DataError(f"{_where(source, row, name)}: missing (format {fmt!r}){hint}")
    if fmt == "alpaca":
        instruction = _text(record["instruction"], source, row, "instruction")
        extra = record.get("input")
        if extra is not None:
            extra = _text(extra, source, row, "input", allow_empty=True)
        prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        return [{"role": "user", "content": prompt}], _text(record["output"], source, row, "output")
    if fmt in ("prompt_completion", "prompt_response"):
        target = "completion" if fmt == "prompt_completion" else "response"
        prompt = _text(record["prompt"], source, row, "prompt")
        return [{"role": "user", "content": prompt}], _text(record[target], source, row, target)
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{_where(source, row, 'messages')}: expected a non-empty list of messages")
    clean = []
    for k, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise DataError(f"{_where(source, row, f'messages[{k}]')}: expected {{'role', 'content'}}")
        role = _text(msg["role"], source, row, f"messages[{k}].role")
        clean.append({"role": role, "content": _text(msg["content"], source, row, f"messages[{k}].content")})
    if clean[-1]["role"] != "assistant":
        raise DataError(f"{_where(source, row, 'messages')}: the last message must be the assistant's response")
    return clean[:-1], clean[-1]["content"]


def read_records(path: str | Path) -> list[dict]:
    """Read a local JSON/JSONL/parquet/CSV file into a list of row dicts."""
    path = Path(path)
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(_SUFFIXES)}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if kind == "json":
        return _json_records(path)
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, keep_default_na=False)
    except Exception as exc:  # pyarrow/pandas errors do not name the file
        raise DataError(f"{path}: could not be read as {kind}: {exc}") from exc
    return [{k: (v.tolist() if hasattr(v, "tolist") and not isinstance(v, str) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def _json_records(path: Path) -> list[dict]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: invalid UTF-8 at byte {exc.start} (line {line})") from exc
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from exc
    else:
        rows = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {line_no} is not valid JSON: {exc.msg}") from exc
    for row, record in enumerate(rows):
        if not isinstance(record, dict):
            raise DataError(f"{_where(path, row)}: expected a JSON object, got {type(record).__name__}")
    return rows


def _decode_nested(value):
    # CSV and some parquet writers store the message list as a JSON string.
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def canonicalize(raw, *, source: str = "<data>", fmt: str | None = None,
                 num_proc: int | None = None) -> datasets.Dataset:
    """Turn rows of any supported format into canonical examples (see module docstring).

    ``raw`` is a ``datasets.Dataset`` (converted with ``Dataset.map``: the rows stay in
    memory-mapped Arrow files, so large datasets never become Python objects) or a list of
    dicts.
    """
    if not isinstance(raw, datasets.Dataset):
        if not raw:
            raise DataError(f"{source}: contains no examples")
        columns = sorted({k for record in raw for k in record})
        try:
            raw = datasets.Dataset.from_list([{k: r.get(k) for k in columns} for r in raw])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: a field holds values of different types in different rows "
                            f"({exc}); make each field one type") from exc
    if len(raw) == 0:
        raise DataError(f"{source}: contains no examples")
    fmt = fmt or detect_format(raw.column_names, source)
    if fmt not in FORMATS:
        raise DataError(f"{source}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    consumed = [c for c in raw.column_names if c in set(_REQUIRED[fmt]) | {"input", "example_id"}]
    out = raw.map(_canonical_batch, batched=True, with_indices=True, num_proc=num_proc,
                  remove_columns=consumed, fn_kwargs={"fmt": fmt, "source": source},
                  desc="Reading examples")
    return _unique_ids(out, given="example_id" in raw.column_names, source=source)


def _canonical_batch(batch, indices, *, fmt, source):
    out = {"example_id": [], "messages": [], "response": []}
    keys = list(batch)
    for j, row in enumerate(indices):
        record = {k: batch[k][j] for k in keys}
        if "messages" in record:
            record["messages"] = _decode_nested(record["messages"])
        messages, response = _canonical_row(record, fmt, source, row)
        eid = record.get("example_id")
        out["example_id"].append(example_id_for(messages, response) if eid is None else str(eid))
        out["messages"].append(messages)
        out["response"].append(response)
    return out


def _unique_ids(examples: datasets.Dataset, *, given: bool, source: str) -> datasets.Dataset:
    ids = examples["example_id"]
    if len(set(ids)) == len(ids):
        return examples
    seen: dict[str, int] = {}
    fixed = []
    for row, eid in enumerate(ids):
        if eid in seen:
            if given:
                raise DataError(f"{_where(source, row, 'example_id')}: duplicate id {eid!r} "
                                f"(first seen at row {seen[eid]})")
            # Identical content hashes to the same id: number the repeats so ids stay unique.
            k = 2
            while f"{eid}-{k}" in seen:
                k += 1
            eid = f"{eid}-{k}"
        seen[eid] = row
        fixed.append(eid)
    return examples.remove_columns("example_id").add_column("example_id", fixed)


def load_examples(source: str = BUILTIN, *, split: str = "train", fmt: str | None = None,
                  max_examples: int | None = None, **suite_kwargs) -> datasets.Dataset:
    """Load canonical examples.

    Parameters
    ----------
    source : ``"builtin"`` for the task suite (``suite_kwargs`` go to
        :func:`sftmix.toy.make_task_suite`), a local ``.json``/``.jsonl``/``.parquet``/``.csv``
        file, or a dataset name on the Hugging Face Hub (needs network access).
    split : which split of the suite or Hub dataset.
    fmt : force a format instead of detecting it from the columns.
    max_examples : keep only the first N examples.
    """
    if source == BUILTIN:
        from .toy import make_task_suite

        raw = make_task_suite(**suite_kwargs)[split]
        name = f"builtin[{split}]"
    elif os.path.splitext(source)[1] or os.path.exists(source):
        raw, name = read_records(source), source
    else:  # Hub dataset name: kept for users with network access; never used in tests.
        raw, name = datasets.load_dataset(source, split=split), f"{source}[{split}]"
    if max_examples is not None:
        raw = raw.select(range(min(max_examples, len(raw)))) if isinstance(raw, datasets.Dataset) \
            else raw[:max_examples]
    return canonicalize(raw, source=name, fmt=fmt)


@dataclass
class TokenizeReport:
    """What tokenization did to the data."""
    kept: int = 0
    truncated: int = 0
    dropped_no_response: int = 0
    dropped_ids: list[str] = field(default_factory=list)


def render(tokenizer, messages: list[dict], response: str) -> tuple[str, str]:
    """Return (prompt text, prompt + response text) as the model will see them."""
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=False)
    else:
        prompt = FALLBACK_TEMPLATE.format(prompt="\n\n".join(m["content"] for m in messages))
        full = prompt + response + (tokenizer.eos_token or "")
    if not full.startswith(prompt):
        raise DataError("the chat template renders the prompt differently inside the full conversation; "
                        "response masks cannot be built from offsets for this tokenizer")
    return prompt, full


def _tokenize_batch(batch, tokenizer, max_length):
    out = {"input_ids": [], "labels": [], "length": [], "n_truncated": [], "keep": []}
    for messages, response in zip(batch["messages"], batch["response"]):
        prompt, full = render(tokenizer, messages, response)
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        boundary = len(prompt)
        # A token is a response token when it starts at or after the end of the prompt text.
        labels = [tok if start >= boundary else -100 for tok, (start, _end) in zip(ids, offsets)]
        truncated = len(ids) > max_length
        ids, labels = ids[:max_length], labels[:max_length]
        out["input_ids"].append(ids)
        out["labels"].append(labels)
        out["length"].append(len(ids))
        out["n_truncated"].append(truncated)
        # Position 0 is never a prediction target, so a response token must sit at t >= 1.
        out["keep"].append(any(label != -100 for label in labels[1:]))
    return out


def tokenize_examples(examples: datasets.Dataset, tokenizer, *, max_length: int = 512,
                      num_proc: int | None = None, return_report: bool = False):
    """Tokenize canonical examples with response-only labels.

    Returns a ``datasets.Dataset`` with ``input_ids``, ``labels`` (-100 on prompt tokens),
    ``length``, ``example_index`` (row in the returned dataset, used to key per-example
    statistics during training) and the metadata columns. With ``return_report=True``
    also returns a :class:`TokenizeReport`.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    drop = [c for c in ("messages", "response") if c in examples.column_names]
    tokenized = examples.map(_tokenize_batch, batched=True, num_proc=num_proc,
                             fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
                             desc="Tokenizing")
    report = TokenizeReport(truncated=int(sum(tokenized["n_truncated"])))
    keep = tokenized["keep"]
    report.dropped_ids = [eid for eid, k in zip(tokenized["example_id"], keep) if not k]
    report.dropped_no_response = len(report.dropped_ids)
    if report.dropped_no_response:
        logger.warning("dropped %d examples with no response token left after truncation to %d tokens",
                       report.dropped_no_response, max_length)
        tokenized = tokenized.filter(lambda k: k, input_columns="keep")
    if report.truncated:
        logger.info("truncated %d examples to max_length=%d", report.truncated, max_length)
    tokenized = tokenized.remove_columns(drop + ["n_truncated", "keep"])
    # Added as whole columns: a per-row map here cost half the tokenization time at 200k rows.
    tokenized = tokenized.add_column("example_index", list(range(len(tokenized))))
    report.kept = len(tokenized)
    return (tokenized, report) if return_report else tokenized


class PadCollator:
    """Pad ``input_ids`` (pad id), ``labels`` (-100) and build ``attention_mask``.

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
        labels = torch.full((n, width), -100, dtype=torch.long)
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
