"""Loading, canonical formats, response-only labels, padding and clear errors."""

import json

import pandas as pd
import pytest
import torch

from sftmix.data import DataError, PadCollator, load_examples, render, tokenize_examples

ROWS = {
    "alpaca": [{"instruction": "Reverse the word", "input": "cat", "output": "tac"},
               {"instruction": "Say hi", "output": "hi"}],
    "chat": [{"messages": [{"role": "user", "content": "Reverse cat"}, {"role": "assistant", "content": "tac"}]},
             {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"},
                           {"role": "assistant", "content": "hi"}]}],
    "prompt_completion": [{"prompt": "Reverse cat", "completion": "tac"}, {"prompt": "Say hi", "completion": "hi"}],
}


def _write(tmp_path, name, rows, kind="jsonl"):
    path = tmp_path / f"{name}.{kind}"
    if kind == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", sorted(ROWS))
def test_response_only_labels_in_every_format(tmp_path, tokenizer, fmt):
    path = _write(tmp_path, fmt, ROWS[fmt])
    examples = load_examples(str(path))
    tokenized = tokenize_examples(examples, tokenizer, max_length=128)
    for i, row in enumerate(tokenized):
        prompt, full = render(tokenizer, examples[i]["messages"], examples[i]["response"])
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids, labels = row["input_ids"], row["labels"]
        assert all(label == -100 for label in labels[:n_prompt])          # prompt masked
        assert labels[n_prompt:] == ids[n_prompt:]                       # response kept
        response_ids = tokenizer(examples[i]["response"] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        assert labels[n_prompt:] == response_ids                         # exactly the response + end marker


def test_literal_masking_and_padding():
    # Two examples of lengths 5 and 3; the collator pads ids with 0, labels with -100.
    features = [{"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, 8, 9], "example_index": 0},
                {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "example_index": 1}]
    batch = PadCollator(pad_token_id=0)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8, 9], [-100, 6, 7, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["example_index"].tolist() == [0, 1]
    assert PadCollator(0, pad_to_multiple_of=4)(features)["input_ids"].shape == (2, 8)


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv", "parquet"])
def test_file_types_give_same_examples(tmp_path, kind):
    rows = ROWS["prompt_completion"]
    examples = load_examples(str(_write(tmp_path, "data", rows, kind)))
    assert examples["response"] == ["tac", "hi"]
    assert examples["messages"][0] == [{"role": "user", "content": "Reverse cat"}]


def test_alpaca_input_is_appended_and_ids_are_stable(tmp_path):
    path = _write(tmp_path, "a", ROWS["alpaca"])
    first, again = load_examples(str(path)), load_examples(str(path))
    assert first["messages"][0][0]["content"] == "Reverse the word\n\ncat"
    assert first["example_id"] == again["example_id"]
    assert len(set(first["example_id"])) == 2


def test_given_ids_and_metadata_are_kept(tmp_path):
    rows = [{"example_id": "a1", "prompt": "x", "response": "y", "source": "s1"}]
    examples = load_examples(str(_write(tmp_path, "m", rows)))
    assert examples[0]["example_id"] == "a1" and examples[0]["source"] == "s1"


@pytest.mark.parametrize("rows, needle", [
    ([{"prompt": "a", "completion": "b"}, {"prompt": "c"}], "row 1, field 'completion': missing"),
    ([{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "  "}], "row 1, field 'completion': is empty"),
    ([{"prompt": "a", "completion": 3}], "row 0, field 'completion': expected a string, got int"),
    ([{"question": "a", "answer": "b"}], "cannot tell the data format"),
    ([{"messages": [{"role": "user", "content": "hi"}]}], "row 0, field 'messages': the last message must be"),
    ([{"example_id": "x", "prompt": "a", "completion": "b"}, {"example_id": "x", "prompt": "c", "completion": "d"}],
     "row 1, field 'example_id': duplicate id 'x'"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, rows, needle):
    path = _write(tmp_path, "bad", rows)
    with pytest.raises(DataError) as err:
        load_examples(str(path))
    assert str(path) in str(err.value) and needle in str(err.value)


def test_bad_files(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "\xff"}\n')
    with pytest.raises(DataError, match="invalid UTF-8 .*line 2"):
        load_examples(str(bad))
    broken = tmp_path / "y.jsonl"
    broken.write_text('{"prompt": "a", "completion": "b"}\n{oops\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_examples(str(broken))
    with pytest.raises(DataError, match="unsupported file type"):
        load_examples(str(tmp_path / "z.txt"))
    with pytest.raises(DataError, match="unknown format"):
        load_examples(str(_write(tmp_path, "ok", ROWS["alpaca"])), fmt="xml")


def test_truncation_keeps_prompt_and_drops_examples_without_response(tokenizer):
    from sftmix.data import canonicalize

    examples = canonicalize([{"prompt": "p" * 10, "response": "r" * 30}, {"prompt": "q" * 60, "response": "s"}])
    # Prompt 1 renders to ~32 tokens, prompt 2 to ~82: at 40 the first is cut, the second loses its response.
    tokenized, report = tokenize_examples(examples, tokenizer, max_length=40, return_report=True)
    assert report.kept == 1 and report.dropped_no_response == 1 and report.truncated == 2
    assert report.dropped_ids == [examples[1]["example_id"]]
    row = tokenized[0]
    assert len(row["input_ids"]) == 40 and row["length"] == 40
    assert sum(label != -100 for label in row["labels"]) > 0


def test_builtin_suite_loads_with_metadata(suite_examples):
    train, test = suite_examples
    assert {"example_id", "messages", "response", "task", "difficulty", "noisy", "answer"} <= set(train.column_names)
    assert len(train) == 256 and len(test) == 64
    assert not set(train["example_id"]) & set(test["example_id"])


def test_tokenized_columns(suite_examples, tokenizer):
    tokenized = tokenize_examples(suite_examples[0], tokenizer, max_length=128)
    assert tokenized["example_index"] == list(range(len(tokenized)))
    assert all(len(i) == n for i, n in zip(tokenized["input_ids"], tokenized["length"]))
    batch = PadCollator(tokenizer.pad_token_id)([tokenized[i] for i in range(4)])
    assert isinstance(batch["input_ids"], torch.Tensor) and batch["labels"].shape == batch["input_ids"].shape


def test_mixed_formats_and_types_are_explained(tmp_path):
    mixed = _write(tmp_path, "mixed", [ROWS["prompt_completion"][0], ROWS["alpaca"][0]])
    with pytest.raises(DataError, match="row 0, field 'instruction': missing .*looks like format 'prompt_completion'"):
        load_examples(str(mixed))
    types = _write(tmp_path, "types", [{"prompt": "a", "completion": "b", "score": 1},
                                       {"prompt": "c", "completion": "d", "score": "high"}])
    with pytest.raises(DataError, match="different types"):
        load_examples(str(types))
