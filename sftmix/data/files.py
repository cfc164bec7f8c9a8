"""Reading local data files (JSON, JSON Lines, parquet, CSV) into records, with errors that point at the line.

:class:`RecordReader` yields one dict per record. A JSON array is parsed incrementally, one
record at a time: the reader holds a chunk of the file (:data:`CHUNK_CHARS`) plus the record
being parsed (its buffer at most doubles past the longest record), never the whole file.
Measured on the packaged 125 MB ShareGPT file (``resource.getrusage`` in a fresh process, a
2-core machine shared with other jobs): iterating over its 17,671 records takes 0.46-0.49 s
(3 runs) and adds 4-5 MB to the 333 MB peak RSS that importing ``sftmix.data`` (torch,
datasets, pyarrow) costs. Loading it as examples (``load_examples_with_report("sharegpt")``,
which converts kept examples to Arrow 2,000 at a time) peaks at 497-515 MB (5 runs; 1.1-2.8 s,
the longer with both cores busy): the import baseline plus about twice the kept text's 91 MB
Arrow table. The memory bound is therefore: baseline + ~2x the kept text + one chunk of the
file + the longest record.

A file that breaks off, cut in the middle of a record or invalid from some point on, is a
one-line :class:`~sftmix.data.canonical.DataError` naming the line and column where it breaks
and the row that is incomplete. With ``keep_complete_records=True`` the records before the
break are kept and :attr:`RecordReader.truncation` says how many and where reading stopped.
Rows count from 0, lines and columns from 1 (columns in characters).
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .canonical import DataError, locate

__all__ = ["CHUNK_CHARS", "SUFFIXES", "RecordReader", "Truncation", "decode_nested", "read_records"]

#: File suffixes read, and how.
SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
#: Bytes read from a JSON file at a time (the buffer grows only for a longer record).
CHUNK_CHARS = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A parse error this close to the end of the text read so far (a literal, number or \u escape cut
# short) may just mean "read more"; a cut string is "Unterminated string" wherever it started.
_NEAR_END = 8
_KEEP_HINT = "pass keep_complete_records=True (--keep_complete_records True) to keep them"


@dataclass(frozen=True)
class Truncation:
    """Where a file stopped being readable, when the complete records before it were kept."""

    line: int
    column: int
    rows_kept: int
    reason: str   # e.g. "end of file inside row 17671, which starts at line 604519, column 3"

    def __str__(self) -> str:
        return (f"stopped at line {self.line}, column {self.column} ({self.reason}); kept the "
                f"{self.rows_kept:,} complete records before it")


class _Broken(Exception):
    """Raised inside the JSON parser: where the text stops being readable."""

    def __init__(self, line: int, column: int, detail: str):
        super().__init__(detail)
        self.line, self.column, self.detail = line, column, detail


class _Truncated(_Broken):
    """The text ends inside a record."""


class RecordReader:
    """The records of a local ``.json`` (array or JSON Lines), ``.jsonl``, ``.parquet`` or ``.csv`` file.

    Iterate over it for one dict per record. ``keep_complete_records``: when a JSON/JSONL file
    breaks off, stop at the break instead of raising, and set :attr:`truncation`.
    :attr:`rows_read` counts the records yielded so far.
    """

    def __init__(self, path, *, keep_complete_records: bool = False):
        self.path = Path(path)
        self.kind = SUFFIXES.get(self.path.suffix.lower())
        if self.kind is None:
            raise DataError(f"{self.path}: unsupported file type {self.path.suffix!r}; "
                            f"use one of {', '.join(SUFFIXES)}")
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.keep_complete_records = keep_complete_records
        self.truncation: Truncation | None = None
        self.rows_read = 0

    def __iter__(self) -> Iterator[dict]:
        self.truncation, self.rows_read = None, 0
        for row, record in enumerate(self._json() if self.kind == "json" else self._table()):
            if not isinstance(record, dict):
                raise DataError(f"{locate(self.path, row)}: expected a JSON object, got {type(record).__name__}")
            self.rows_read = row + 1
            yield record

    def _stop(self, line: int, column: int, rows_kept: int, detail: str, reason: str) -> None:
        """The file breaks at (line, column): keep what came before, or raise."""
        if not self.keep_complete_records:
            raise DataError(f"{self.path}: {detail}; {rows_kept:,} complete records come before it: {_KEEP_HINT}")
        self.truncation = Truncation(line, column, rows_kept, reason)

    # -- parquet / CSV --------------------------------------------------------------------------
    def _table(self) -> Iterator[dict]:
        import pandas as pd

        try:
            frame = (pd.read_parquet(self.path) if self.kind == "parquet"
                     else pd.read_csv(self.path, keep_default_na=False))
        except Exception as exc:  # pyarrow/pandas errors do not name the file
            raise DataError(f"{self.path}: could not be read as {self.kind}: {exc}") from exc
        for record in frame.to_dict("records"):
            yield {k: (v.tolist() if hasattr(v, "tolist") and not isinstance(v, str) else v) for k, v in record.items()}

    # -- JSON -----------------------------------------------------------------------------------
    def _json(self) -> Iterator[dict]:
        with open(self.path, "rb") as f:
            stream = _TextStream(f)
            first = stream.peek()
            if first == "\ufeff":  # a byte-order mark
                stream.pos += 1
                first = stream.peek()
            if not first and stream.bad_byte is not None:
                raise DataError(f"{self.path}: {stream.end_reason()} (line 1), before any record")
            if first == "[":
                yield from self._json_array(stream)
                return
        if first:
            yield from self._json_lines()

    def _json_array(self, s: _TextStream) -> Iterator[dict]:
        s.pos += 1  # the opening '['
        row = 0
        try:
            ch = s.peek()
            if ch == "]":
                s.pos += 1
                return self._after_array(s, row)
            while True:
                if ch == "":
                    line, column = s.where(len(s.buf))
                    what = f"after row {row - 1}" if row else "before its first record"
                    return self._stop(line, column, row,
                                      f"the JSON array breaks off at line {line}, column {column} ({s.end_reason()}) "
                                      f"{what}, before its closing ']'", f"{s.end_reason()} {what}")
                yield self._json_value(s, row)
                row += 1
                ch = s.peek()
                if ch == ",":
                    s.pos += 1
                    ch = s.peek()
                    if ch == "]":
                        raise _Broken(*s.where(s.pos), f"a ',' after row {row - 1} is followed by ']' (no record)")
                elif ch == "]":
                    s.pos += 1
                    return self._after_array(s, row)
                elif ch != "":
                    raise _Broken(*s.where(s.pos), f"expected ',' or ']' after row {row - 1}, found {ch!r}")
        except _Truncated as exc:
            return self._stop(exc.line, exc.column, row, f"the JSON breaks off at line {exc.line}, column {exc.column} "
                              f"({exc.detail})", exc.detail)
        except _Broken as exc:
            return self._stop(exc.line, exc.column, row, f"not valid JSON at line {exc.line}, column {exc.column} "
                              f"(row {row}): {exc.detail}", f"not valid JSON in row {row}: {exc.detail}")

    def _json_value(self, s: _TextStream, row: int):
        try:
            return s.value()
        except json.JSONDecodeError as exc:
            near_end = exc.msg.startswith("Unterminated string") or exc.pos >= len(s.buf) - _NEAR_END
            if not (s.eof and near_end):
                raise _Broken(*s.where(exc.pos), exc.msg) from None
        # The text ends inside this record: the file was cut off (or has invalid UTF-8 here).
        start = s.where(s.pos)  # s.pos stays at the record's start until it parses
        line, column = s.where(len(s.buf))
        raise _Truncated(line, column, f"{s.end_reason()} inside row {row}, which starts at line {start[0]}, "
                                       f"column {start[1]}")

    def _after_array(self, s: _TextStream, rows: int) -> None:
        ch = s.peek()
        if ch:
            line, column = s.where(s.pos)
            self._stop(line, column, rows, f"unexpected {ch!r} at line {line}, column {column} after the array's "
                       "closing ']'", "content after the closing ']'")

    def _json_lines(self) -> Iterator[dict]:
        row = offset = 0
        with open(self.path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
                    return self._stop(line_no, column, row, f"invalid UTF-8 at byte {offset + exc.start} "
                                      f"(line {line_no}, column {column})", f"invalid UTF-8 in line {line_no}")
                offset += len(raw)
                if line_no == 1:
                    text = text.removeprefix("\ufeff")
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    cut = "; the file ends inside this line: it was cut off" if not raw.endswith(b"\n") else ""
                    return self._stop(line_no, exc.colno, row, f"line {line_no} is not valid JSON at column "
                                      f"{exc.colno}: {exc.msg} (row {row}){cut}",
                                      f"line {line_no} (row {row}) is not valid JSON")
                yield record
                row += 1


class _TextStream:
    """Text of a UTF-8 file, read on demand: ``buf[pos:]`` is what has not been parsed yet.

    Consumed text is dropped whenever more is read, so memory stays at about one chunk plus
    the longest record. ``where(i)`` gives the (line, column) of ``buf[i]`` in the file.
    """

    def __init__(self, f):
        self.f = f
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.json = json.JSONDecoder()
        self.buf, self.pos = "", 0
        self.line0, self.col0 = 1, 1   # where buf[0] is in the file
        self.bytes_read = 0
        self.eof = False
        self.bad_byte: int | None = None   # offset of invalid UTF-8, which ends the readable text

    def where(self, i: int) -> tuple[int, int]:
        newlines = self.buf.count("\n", 0, i)
        if not newlines:
            return self.line0, self.col0 + i
        return self.line0 + newlines, i - self.buf.rfind("\n", 0, i)

    def end_reason(self) -> str:
        return "end of file" if self.bad_byte is None else f"invalid UTF-8 at byte {self.bad_byte}"

    def fill(self, at_least: int = 0) -> None:
        """Drop the consumed text and read at least ``at_least`` (and :data:`CHUNK_CHARS`) more bytes."""
        if self.pos:
            self.line0, self.col0 = self.where(self.pos)
            self.buf, self.pos = self.buf[self.pos:], 0
        data = self.f.read(max(at_least, CHUNK_CHARS))
        pending = self.decoder.getstate()[0]
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:  # keep the valid text before the bad byte, then stop
            whole = pending + data
            text = whole[: exc.start].decode("utf-8")
            self.bad_byte = self.bytes_read - len(pending) + exc.start
            self.eof = True
        self.bytes_read += len(data)
        self.eof = self.eof or not data
        self.buf += text

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end), without consuming it."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self.fill()

    def value(self):
        """Parse one JSON value at ``pos``, reading more text while it may be incomplete."""
        while True:
            try:
                obj, end = self.json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                near_end = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - _NEAR_END
                if near_end and not self.eof:
                    self.fill(at_least=2 * (len(self.buf) - self.pos))  # doubling: linear time for long records
                    continue
                raise
            if end == len(self.buf) and not self.eof and not isinstance(obj, (dict, list, str)):
                self.fill()  # a number or literal at the very end may go on
                continue
            self.pos = end
            return obj


def read_records(path, *, keep_complete_records: bool = False) -> list[dict]:
    """Read a local JSON/JSONL/parquet/CSV file into a list of row dicts (see :class:`RecordReader`)."""
    return list(RecordReader(path, keep_complete_records=keep_complete_records))


def decode_nested(value):
    """A list or object stored as a JSON string (CSV, some parquet writers), decoded; anything else as is."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
