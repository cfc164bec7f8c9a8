"""From data on disk (or the built-in suite, or the Hub) to canonical examples.

:func:`load_examples` reads a source and returns *canonical examples*: a
``datasets.Dataset`` with ``example_id`` (str), ``messages`` (the prompt as chat
messages), ``response`` (str) and any extra metadata columns (``task``, ...).
Accepted formats: Alpaca (``instruction``/``input``/``output``), chat (``messages`` with
roles ``system``, ``user``, ``assistant``; the last message is the final assistant turn, or,
with a ``response`` field, ``messages`` is the prompt and ``response`` the final answer: the
canonical form itself, which ``sftmix data --out`` writes), ShareGPT (``conversations`` of
``{"from", "value"}`` turns, repaired by the policy of
:mod:`sftmix.data.sharegpt`), ``prompt``/``completion`` and ``prompt``/``response``. In a
multi-turn chat, ``messages`` keeps the earlier turns, assistant turns included, and
``response`` is the final assistant turn; :func:`~sftmix.data.tokenize.tokenize_examples`
trains every assistant turn (or only the last with ``last_turn_only=True``). An
``example_id`` or ``id`` column becomes the example id (a duplicate is an error naming both
rows; ShareGPT drops the later one, visibly); without one, ids are derived from content. Bad
rows raise :class:`DataError` naming file, row and field.

:func:`load_examples_with_report` also returns a :class:`~sftmix.data.report.DataReport`
(records read, repairs by reason, kept, where a broken file stopped, what ``max_exchanges``
cut); :func:`load_examples` logs its summary as a warning whenever the examples differ from
the file. :func:`load_train_eval` (and ``..._with_report``) does the same for the sources named
by ``DataArguments``. ``"sharegpt"`` names the ShareGPT file packaged offline
(:mod:`sftmix.offline`); it is cut in the middle of a record, so its complete records are kept.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable

from ..constants import BUILTIN, FORMATS
from ..offline import dataset_file, is_named_dataset
from ..toy import make_task_suite
from .canonical import ID_COLUMNS, ROLES, DataError, cut_exchanges, example_id_for, locate
from .files import RecordReader, decode_nested, read_records
from .report import DataReport
from .sharegpt import DROPS, TRIMS, sharegpt_examples

__all__ = ["ID_COLUMNS", "ROLES", "DataError", "canonicalize", "detect_format", "example_id_for", "load_examples",
           "load_examples_with_report", "load_train_eval", "load_train_eval_with_report", "read_records"]

logger = logging.getLogger(__name__)

_REQUIRED = {
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
    "sharegpt": ("conversations",),
    "prompt_completion": ("prompt", "completion"),
    "prompt_response": ("prompt", "response"),
}
#: Canonical ShareGPT examples go to Arrow this many at a time, so few Python objects are alive at once.
ARROW_BATCH = 2000
_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def detect_format(columns, source: str = "<data>") -> str:
    """Name the format from column names; raise :class:`DataError` if none fits."""
    cols = set(columns)
    for fmt in ("chat", "sharegpt", "alpaca", "prompt_completion", "prompt_response"):
        if set(_REQUIRED[fmt]) <= cols:
            return fmt
    raise DataError(
        f"{source}: cannot tell the data format from columns {sorted(cols)}; expected one of "
        + "; ".join(f"{fmt}: {', '.join(req)}" for fmt, req in _REQUIRED.items()))


def _text(value, source, row, name, *, allow_empty=False) -> str:
    if not isinstance(value, str):
        raise DataError(f"{locate(source, row, name)}: expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(f"{locate(source, row, name)}: is empty")
    return value


def _canonical_row(record: dict, fmt: str, source: str, row: int) -> tuple[list[dict], str]:
    for name in _REQUIRED[fmt]:
        if name not in record or record[name] is None:
            other = [f for f, req in _REQUIRED.items()
                     if f != fmt and all(record.get(k) is not None for k in req)]
            hint = f"; this row looks like format {other[0]!r}: one file must use one format" if other else ""
            raise DataError(f"{locate(source, row, name)}: missing (format {fmt!r}){hint}")
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
        raise DataError(f"{locate(source, row, 'messages')}: expected a non-empty list of messages")
    clean = []
    for k, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise DataError(f"{locate(source, row, f'messages[{k}]')}: expected {{'role', 'content'}}")
        role = _text(msg["role"], source, row, f"messages[{k}].role")
        if role not in ROLES:
            raise DataError(f"{locate(source, row, f'messages[{k}].role')}: unknown role {role!r}; "
                            f"use one of {', '.join(ROLES)}")
        clean.append({"role": role, "content": _text(msg["content"], source, row, f"messages[{k}].content")})
    if record.get("response") is not None:  # canonical: messages is the prompt, response the final answer
        if clean[-1]["role"] == "assistant":
            raise DataError(f"{locate(source, row, 'response')}: the messages already end with the assistant's "
                            "answer; give the final answer once (as the last message, or as response after a "
                            "prompt that ends with the user's turn)")
        return clean, _text(record["response"], source, row, "response")
    if clean[-1]["role"] != "assistant":
        raise DataError(f"{locate(source, row, 'messages')}: the last message must be the assistant's response "
                        "(or give the answer in a response field)")
    return clean[:-1], clean[-1]["content"]


def canonicalize(raw, *, source: str = "<data>", fmt: str | None = None, num_proc: int | None = None,
                 strict: bool = False) -> datasets.Dataset:
    """Turn rows of any supported format into canonical examples (see module docstring).

    ``raw`` is a ``datasets.Dataset`` (converted with ``Dataset.map``: the rows stay in
    memory-mapped Arrow files, so large datasets never become Python objects) or a list of
    dicts. ``strict``: ShareGPT repairs are errors (see :mod:`sftmix.data.sharegpt`).
    """
    return _canonicalize(raw, source=source, fmt=fmt, strict=strict, report=DataReport(source), num_proc=num_proc)


def _canonicalize(raw, *, source: str, fmt: str | None, strict: bool, report: DataReport,
                  max_examples: int | None = None, max_exchanges: int | None = None,
                  num_proc: int | None = None) -> datasets.Dataset:
    """``raw``: a :class:`RecordReader` (read as a stream), a list of dicts or a ``datasets.Dataset``."""
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"{source}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if isinstance(raw, RecordReader):
        records = iter(raw)
        try:
            first = next(records, None)
            if first is None:
                raise DataError(f"{source}: contains no examples")
            stream = itertools.chain([first], records)
            if (fmt or _format_or_none(first.keys())) == "sharegpt":
                report.format, report.format_given = "sharegpt", fmt is not None
                out = _sharegpt_dataset(stream, source=source, strict=strict, report=report,
                                        max_examples=max_examples, max_exchanges=max_exchanges)
            else:
                rows = list(itertools.islice(stream, max_examples))
                out = _canonicalize(rows, source=source, fmt=fmt, strict=strict, report=report,
                                    max_exchanges=max_exchanges, num_proc=num_proc)
        finally:
            records.close()
        report.truncation = raw.truncation
        return out
    if isinstance(raw, datasets.Dataset):
        columns = raw.column_names
    else:
        if not raw:
            raise DataError(f"{source}: contains no examples")
        columns = sorted({k for record in raw for k in record})
    report.format, report.format_given = fmt or detect_format(columns, source), fmt is not None
    if report.format == "sharegpt":
        rows = _dataset_rows(raw) if isinstance(raw, datasets.Dataset) else raw
        return _sharegpt_dataset(rows, source=source, strict=strict, report=report, max_exchanges=max_exchanges)
    if not isinstance(raw, datasets.Dataset):
        try:
            raw = datasets.Dataset.from_list([{k: r.get(k) for k in columns} for r in raw])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: a field holds values of different types in different rows "
                            f"({exc}); make each field one type") from exc
    if len(raw) == 0:
        raise DataError(f"{source}: contains no examples")
    report.records = len(raw)
    fmt = report.format
    id_column = next((c for c in ID_COLUMNS if c in raw.column_names), None)
    consumed = [c for c in raw.column_names if c in set(_REQUIRED[fmt]) | {"input", id_column}
                | ({"response"} if fmt == "chat" else set())]
    out = raw.map(_canonical_batch, batched=True, with_indices=True, num_proc=num_proc,
                  remove_columns=consumed, fn_kwargs={"fmt": fmt, "source": source, "id_column": id_column},
                  desc="Reading examples")
    if out.features["example_id"] != datasets.Value("string"):  # a numeric id column keeps its type in map
        out = out.cast_column("example_id", datasets.Value("string"))
    out = _unique_ids(out, id_column=id_column, source=source)
    if max_exchanges is not None:
        out = _cut_dataset(out, max_exchanges, report)
    report.kept = len(out)
    return out


def _format_or_none(columns) -> str | None:
    try:
        return detect_format(columns)
    except DataError:
        return None


def _dataset_rows(dataset: datasets.Dataset):
    for batch in dataset.iter(batch_size=1000):
        keys = list(batch)
        for j in range(len(batch[keys[0]])):
            yield {k: batch[k][j] for k in keys}


def _sharegpt_dataset(records, *, source: str, strict: bool, report: DataReport, max_examples: int | None = None,
                      max_exchanges: int | None = None) -> datasets.Dataset:
    """Stream ShareGPT records through the repair policy into an in-memory Arrow table, in batches.

    The dataset's fingerprint is a hash of the Arrow buffers, computed batch by batch: ``datasets``
    would otherwise hash the finished table by serialising it (measured: +380 MB peak RSS on the
    packaged ShareGPT file, whose table is 91 MB).
    """
    tables, batch = [], []
    digest = hashlib.sha1()
    for example in sharegpt_examples(records, source=source, strict=strict, report=report):
        if max_exchanges is not None:
            messages, response, removed = cut_exchanges(example["messages"], example["response"], max_exchanges)
            example.update(messages=messages, response=response)
            report.cut += removed > 0
            report.exchanges_removed += removed
        batch.append(example)
        if len(batch) == ARROW_BATCH:
            tables.append(_arrow_table(batch, source))
            _digest(digest, tables[-1])
            batch = []
        if max_examples is not None and report.kept >= max_examples:
            report.stopped_at_max_examples = max_examples
            break
    if batch:
        tables.append(_arrow_table(batch, source))
        _digest(digest, tables[-1])
    report.dropped = {r: report.dropped[r] for r in DROPS if r in report.dropped}
    report.trimmed = {r: report.trimmed[r] for r in TRIMS if r in report.trimmed}
    if not tables:
        raise DataError(f"{source}: no conversation is left after the repairs ({report.summary()})")
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{source}: a field holds values of different types in different rows ({exc}); "
                        "make each field one type") from exc
    return datasets.Dataset(InMemoryTable(table), fingerprint=digest.hexdigest()[:16])


def _digest(digest, table: pa.Table) -> None:
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)


def _arrow_table(rows: list[dict], source: str) -> pa.Table:
    columns = {"example_id": pa.array([r["example_id"] for r in rows], pa.string()),
               "messages": pa.array([r["messages"] for r in rows], _MESSAGES),
               "response": pa.array([r["response"] for r in rows], pa.string())}
    for key in dict.fromkeys(k for r in rows for k in r if k not in columns):
        try:
            columns[key] = pa.array([r.get(key) for r in rows])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"{source}: field {key!r} holds values of different types in different rows ({exc}); "
                            "make each field one type") from exc
    return pa.table(columns)


def _cut_dataset(examples: datasets.Dataset, n: int, report: DataReport) -> datasets.Dataset:
    """Every example cut to its first ``n`` exchanges (see :func:`~sftmix.data.canonical.cut_exchanges`)."""
    def cut(batch):
        out = {"messages": [], "response": [], "_exchanges_removed": []}
        for messages, response in zip(batch["messages"], batch["response"]):
            messages, response, removed = cut_exchanges(messages, response, n)
            out["messages"].append(messages)
            out["response"].append(response)
            out["_exchanges_removed"].append(removed)
        return out

    examples = examples.map(cut, batched=True, desc="Cutting to max_exchanges")
    removed = list(examples["_exchanges_removed"])
    report.cut += sum(r > 0 for r in removed)
    report.exchanges_removed += sum(removed)
    return examples.remove_columns("_exchanges_removed")


def _canonical_batch(batch, indices, *, fmt, source, id_column=None):
    out = {"example_id": [], "messages": [], "response": []}
    keys = list(batch)
    for j, row in enumerate(indices):
        record = {k: batch[k][j] for k in keys}
        if "messages" in record:
            record["messages"] = decode_nested(record["messages"])
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
                raise DataError(f"{locate(source, row, id_column)}: duplicate id {eid!r}, also at row {seen[eid]}; "
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
                  max_examples: int | None = None, strict: bool = False, keep_complete_records: bool = False,
                  max_exchanges: int | None = None, **suite_kwargs) -> datasets.Dataset:
    """Load canonical examples.

    Parameters
    ----------
    source : ``"builtin"`` for the task suite (``suite_kwargs`` go to
        :func:`sftmix.toy.make_task_suite`), a named offline dataset (``"sharegpt"``, see
        :mod:`sftmix.offline`), a local ``.json``/``.jsonl``/``.parquet``/``.csv`` file, or a
        dataset name on the Hugging Face Hub (needs network access).
    split : which split of the suite or Hub dataset.
    fmt : force a format instead of detecting it from the columns.
    max_examples : keep only the first N examples (ShareGPT: the first N the repair policy keeps;
        reading stops there).
    strict : ShareGPT: every repair of the default policy is a :class:`DataError` instead.
    keep_complete_records : a JSON/JSONL file that breaks off keeps the complete records before the
        break instead of raising (always on for a named dataset known to be cut).
    max_exchanges : keep only the first N user->assistant exchanges of each conversation.

    The repairs, truncation and cuts are logged as one warning; use
    :func:`load_examples_with_report` to get them as a :class:`~sftmix.data.report.DataReport`.
    """
    examples, report = load_examples_with_report(
        source, split=split, fmt=fmt, max_examples=max_examples, strict=strict,
        keep_complete_records=keep_complete_records, max_exchanges=max_exchanges, **suite_kwargs)
    if report.changed:
        logger.warning("%s", report.summary())
    return examples


def load_examples_with_report(source: str = BUILTIN, *, split: str = "train", fmt: str | None = None,
                              max_examples: int | None = None, strict: bool = False,
                              keep_complete_records: bool = False, max_exchanges: int | None = None,
                              **suite_kwargs) -> tuple[datasets.Dataset, DataReport]:
    """:func:`load_examples` and the :class:`~sftmix.data.report.DataReport` of what loading did."""
    if max_exchanges is not None and max_exchanges < 1:
        raise ValueError(f"max_exchanges must be >= 1, got {max_exchanges}")
    named = None
    if source == BUILTIN:
        raw, name = make_task_suite(**suite_kwargs)[split], f"builtin[{split}]"
    elif is_named_dataset(source):
        # The packaged file is known to be cut mid-record: its complete records are what it holds.
        named, path = source, dataset_file(source)
        raw, name = RecordReader(path, keep_complete_records=True), str(path)
    elif os.path.splitext(source)[1] or os.path.exists(source):
        raw, name = RecordReader(source, keep_complete_records=keep_complete_records), source
    else:  # Hub dataset name: kept for users with network access; never used in tests.
        raw, name = datasets.load_dataset(source, split=split), f"{source}[{split}]"
    if max_examples is not None and isinstance(raw, datasets.Dataset):
        raw = raw.select(range(min(max_examples, len(raw))))
    report = DataReport(source=name, named=named, strict=strict, max_exchanges=max_exchanges)
    examples = _canonicalize(raw, source=name, fmt=fmt, strict=strict, report=report, max_examples=max_examples,
                             max_exchanges=max_exchanges)
    report.kept = len(examples)
    return examples, report


def load_train_eval(data_args) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Canonical training and held-out examples named by ``data_args`` (a :class:`~sftmix.config.DataArguments`).

    Repairs, truncation and cuts are logged as warnings; :func:`load_train_eval_with_report` returns them.
    """
    train, held_out, reports = load_train_eval_with_report(data_args)
    for report in reports.values():
        if report.changed:
            logger.warning("%s", report.summary())
    return train, held_out


def load_train_eval_with_report(data_args) -> tuple[datasets.Dataset, datasets.Dataset | None, dict[str, DataReport]]:
    """:func:`load_train_eval` and the reports of each load: ``{"train": ..., "held_out": ...}`` (held_out if any).

    The held-out data goes through the same policy options (``strict``, ``keep_complete_records``,
    ``max_exchanges``) as the training data.
    """
    options = dict(strict=data_args.strict, keep_complete_records=data_args.keep_complete_records,
                   max_exchanges=data_args.max_exchanges)
    kwargs = data_args.suite_kwargs() if data_args.dataset == BUILTIN else {}
    train, train_report = load_examples_with_report(data_args.dataset, split=data_args.dataset_split,
                                                    fmt=data_args.dataset_format, max_examples=data_args.max_examples,
                                                    **options, **kwargs)
    reports = {"train": train_report}
    held_out = None
    if data_args.eval_dataset is not None:
        eval_kwargs = data_args.suite_kwargs() if data_args.eval_dataset == BUILTIN else {}
        held_out, reports["held_out"] = load_examples_with_report(data_args.eval_dataset, split=data_args.eval_split,
                                                                  **options, **eval_kwargs)
    elif data_args.dataset == BUILTIN and data_args.n_test > 0:
        held_out, reports["held_out"] = load_examples_with_report(BUILTIN, split="test", **options, **kwargs)
    return train, held_out, reports
