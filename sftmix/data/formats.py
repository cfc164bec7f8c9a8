"""From data on disk (or the built-in suite, or the Hub) to canonical examples.

:func:`load_examples` reads a source and returns *canonical examples*: a
``datasets.Dataset`` with ``example_id`` (str), ``messages`` (the prompt as chat
messages), ``response`` (str) and any extra metadata columns (``task``, ...).
Accepted formats: Alpaca (``instruction``/``input``/``output``), chat (``messages``
with roles ``system``, ``user``, ``assistant``; the last message is the final assistant
turn), ``prompt``/``completion`` and ``prompt``/``response``. In a multi-turn chat,
``messages`` keeps the earlier turns, assistant turns included, and ``response`` is the
final assistant turn; :func:`~sftmix.data.tokenize.tokenize_examples` trains every
assistant turn (or only the last with ``last_turn_only=True``). An ``example_id`` or
``id`` column becomes the example id (a duplicate is an error naming both rows); without
one, ids are derived from content. Bad rows raise :class:`DataError` naming file, row
and field.
:func:`load_train_eval` does the same for the sources named by ``DataArguments``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import datasets
import pyarrow as pa

from ..constants import BUILTIN, FORMATS
from ..errors import SFTMixUserError
from ..toy import make_task_suite

logger = logging.getLogger(__name__)

_REQUIRED = {
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "prompt_response": ("prompt", "response"),
}
_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
#: Chat roles a message may have.
ROLES = ("system", "user", "assistant")
#: Columns read as the example id, first found wins.
ID_COLUMNS = ("example_id", "id")


class DataError(SFTMixUserError, ValueError):
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
        if role not in ROLES:
            raise DataError(f"{_where(source, row, f'messages[{k}].role')}: unknown role {role!r}; "
                            f"use one of {', '.join(ROLES)}")
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
    id_column = next((c for c in ID_COLUMNS if c in raw.column_names), None)
    consumed = [c for c in raw.column_names if c in set(_REQUIRED[fmt]) | {"input", id_column}]
    out = raw.map(_canonical_batch, batched=True, with_indices=True, num_proc=num_proc,
                  remove_columns=consumed, fn_kwargs={"fmt": fmt, "source": source, "id_column": id_column},
                  desc="Reading examples")
    if out.features["example_id"] != datasets.Value("string"):  # a numeric id column keeps its type in map
        out = out.cast_column("example_id", datasets.Value("string"))
    return _unique_ids(out, id_column=id_column, source=source)


def _canonical_batch(batch, indices, *, fmt, source, id_column=None):
    out = {"example_id": [], "messages": [], "response": []}
    keys = list(batch)
    for j, row in enumerate(indices):
        record = {k: batch[k][j] for k in keys}
        if "messages" in record:
            record["messages"] = _decode_nested(record["messages"])
        messages, response = _canonical_row(record, fmt, source, row)
        eid = record.get(id_column) if id_column else None
        out["example_id"].append(example_id_for(messages, response) if eid is None else str(eid))
        out["messages"].append(messages)
        out["response"].append(response)
    return out


def _unique_ids(examples: datasets.Dataset, *, id_column: str | None, source: str) -> datasets.Dataset:
    ids = examples["example_id"]
    if len(set(ids)) == len(ids):
        return examples
    seen: dict[str, int] = {}
    fixed = []
    for row, eid in enumerate(ids):
        if eid in seen:
            if id_column:
                raise DataError(f"{_where(source, row, id_column)}: duplicate id {eid!r}, also at row {seen[eid]}; "
                                "ids must be unique (fix or drop one of the two rows)")
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


def load_train_eval(data_args) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Canonical training and held-out examples named by ``data_args`` (a :class:`~sftmix.config.DataArguments`)."""
    kwargs = data_args.suite_kwargs() if data_args.dataset == BUILTIN else {}
    train = load_examples(data_args.dataset, split=data_args.dataset_split, fmt=data_args.dataset_format,
                          max_examples=data_args.max_examples, **kwargs)
    if data_args.eval_dataset is not None:
        eval_kwargs = data_args.suite_kwargs() if data_args.eval_dataset == BUILTIN else {}
        held_out = load_examples(data_args.eval_dataset, split=data_args.eval_split, **eval_kwargs)
    elif data_args.dataset == BUILTIN and data_args.n_test > 0:
        held_out = load_examples(BUILTIN, split="test", **kwargs)
    else:
        held_out = None
    return train, held_out
