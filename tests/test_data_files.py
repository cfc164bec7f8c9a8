"""Broken data files: a truncated or invalid JSON file is a one-line error at its line and column;
keep_complete_records keeps what came before; JSON arrays are read incrementally, in bounded memory."""

import json
import tracemalloc

import pytest

import sftmix.data.files as files
from sftmix.data import DataError, RecordReader, load_examples, load_examples_with_report

RECORDS = [{"id": f"r{i}", "conversations": [{"from": "human", "value": f"q{i} ünï \"x\" 🙂"},
                                             {"from": "gpt", "value": "line one\nline two " * (i + 1)}]}
           for i in range(4)]


def pretty(records=RECORDS) -> str:
    return json.dumps(records, indent=2, ensure_ascii=False)


def write(tmp_path, text: str, name="cut.json") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def end_of(text: str) -> tuple[int, int]:
    """(line, column) just after the last character."""
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def test_every_cut_is_an_error_and_keeps_exactly_the_complete_records(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_CHARS", 5)  # refill at every few characters, across multi-byte ones
    full = pretty()
    ends = [full.index("\n  }", full.index(f'"r{i}"')) + 4 for i in range(len(RECORDS))]  # after each record's '}'
    for cut in range(1, len(full)):
        text = full[:cut]
        path = write(tmp_path, text)
        with pytest.raises(DataError) as err:
            list(RecordReader(path))
        message = str(err.value)
        assert "\n" not in message and "line " in message and "column " in message, message
        reader = RecordReader(path, keep_complete_records=True)
        got = list(reader)
        n_complete = sum(end <= cut for end in ends)
        assert got == RECORDS[:n_complete], cut
        assert reader.truncation.rows_kept == n_complete
        assert (reader.truncation.line, reader.truncation.column) == end_of(text)
    reader = RecordReader(write(tmp_path, full), keep_complete_records=True)
    assert list(reader) == RECORDS and reader.truncation is None


def test_truncation_messages_name_line_column_and_row(tmp_path):
    full = pretty()
    second = full.index('"r1"')
    mid_string = full[: full.index("line two", second) + 4]
    path = write(tmp_path, mid_string)
    line, column = end_of(mid_string)
    start_line = full[: full.rindex("{", 0, second)].count("\n") + 1
    with pytest.raises(DataError, match=rf"breaks off at line {line}, column {column} \(end of file inside row 1, "
                                        rf"which starts at line {start_line}, column 3\); 1 complete records come "
                                        r"before it: pass keep_complete_records=True"):
        load_examples(path)
    mid_record = full[: full.index('"conversations"', second) + len('"conversations":')]
    with pytest.raises(DataError, match=r"end of file inside row 1"):
        load_examples(write(tmp_path, mid_record))
    between = full[: full.index("\n  },") + len("\n  },\n")]   # after the "}," that closes row 0
    line, column = end_of(between)
    with pytest.raises(DataError, match=rf"array breaks off at line {line}, column {column} \(end of file\) after "
                                        r"row 0, before its closing '\]'; 1 complete records"):
        load_examples(write(tmp_path, between))
    with pytest.raises(DataError, match="before its first record"):
        load_examples(write(tmp_path, "[\n  "))


def test_keep_complete_records_reports_what_it_kept(tmp_path):
    full = pretty()
    path = write(tmp_path, full[: full.index("line two", full.index('"r3"'))])
    examples, report = load_examples_with_report(path, keep_complete_records=True)
    assert examples["example_id"] == ["r0", "r1", "r2"] and report.records == 3
    assert report.truncation.rows_kept == 3 and "inside row 3" in report.truncation.reason
    assert f"breaks off at line {report.truncation.line}, column {report.truncation.column}: kept the 3 complete" \
        in report.summary()


def test_invalid_json_in_the_middle(tmp_path):
    text = '[\n  {"id": "a", "prompt": "p", "completion": "c"},\n  {"id": "b", "prompt": "p",, "completion": "c"},\n' \
           '  {"id": "c", "prompt": "p", "completion": "c"}\n]\n'
    path = write(tmp_path, text, "mid.json")
    with pytest.raises(json.JSONDecodeError) as reference:  # the standard parser puts it at the same place
        json.loads(text)
    assert (reference.value.lineno, reference.value.colno) == (3, 29)
    with pytest.raises(DataError, match=r"not valid JSON at line 3, column 29 \(row 1\): Expecting property name"):
        load_examples(path)
    reader = RecordReader(path, keep_complete_records=True)
    assert [r["id"] for r in reader] == ["a"]
    assert (reader.truncation.line, reader.truncation.column, reader.truncation.rows_kept) == (3, 29, 1)
    trailing = write(tmp_path, '[{"prompt": "p", "completion": "c"}]\n]', "trailing.json")
    with pytest.raises(DataError, match=r"unexpected '\]' at line 2, column 1 after the array's closing"):
        load_examples(trailing)
    missing_comma = write(tmp_path, '[{"prompt": "p", "completion": "c"} {"prompt": "q"}]', "comma.json")
    with pytest.raises(DataError, match=r"line 1, column 37 \(row 1\): expected ',' or '\]' after row 0, found '\{'"):
        load_examples(missing_comma)
    not_object = write(tmp_path, '[{"prompt": "p", "completion": "c"}, [1, 2]]', "list.json")
    with pytest.raises(DataError, match=r"row 1: expected a JSON object, got list"):
        load_examples(not_object)


def test_invalid_utf8_stops_where_the_bad_byte_is(tmp_path):
    good = b'[\n  {"prompt": "p", "completion": "c"},\n  {"prompt": "'
    path = tmp_path / "bad.json"
    path.write_bytes(good + b"\xff" + b'", "completion": "c"}\n]\n')
    with pytest.raises(DataError, match=rf"line 3, column 15 \(invalid UTF-8 at byte {len(good)} inside row 1"):
        load_examples(str(path))
    reader = RecordReader(path, keep_complete_records=True)
    assert len(list(reader)) == 1 and reader.truncation.rows_kept == 1


def test_truncated_json_lines(tmp_path):
    lines = [json.dumps({"id": f"r{i}", "prompt": "p", "completion": "c"}) for i in range(3)]
    text = "\n".join(lines)[:-9]   # the last line loses its end, and there is no final newline
    path = write(tmp_path, text, "cut.jsonl")
    with pytest.raises(DataError, match=r"line 3 is not valid JSON at column \d+: .*\(row 2\); the file ends inside "
                                        r"this line: it was cut off; 2 complete records come before it"):
        load_examples(path)
    examples, report = load_examples_with_report(path, keep_complete_records=True)
    assert examples["example_id"] == ["r0", "r1"] and report.truncation.line == 3


def test_a_json_array_is_read_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_CHARS", 1 << 16)
    record = {"id": "x", "conversations": [{"from": "human", "value": "q" * 500}, {"from": "gpt", "value": "a" * 500}]}
    path = tmp_path / "big.json"
    with open(path, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps({**record, "id": f"r{i}"}) for i in range(4000)) + "\n]\n")
    size = path.stat().st_size
    assert size > 4_000_000
    tracemalloc.start()
    try:
        n = sum(1 for _ in RecordReader(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 4000
    assert peak < size / 8   # a few chunks of text and one record, not the file (measured: ~0.3 MB of 4 MB)
