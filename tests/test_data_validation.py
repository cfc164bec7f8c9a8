"""Chat roles, id columns and multi-turn labels (every assistant turn, or the last one only)."""

import json

import numpy as np
import pytest
import torch

from sftmix.constants import IGNORE_INDEX
from sftmix.data import DataError, load_examples, tokenize_examples
from sftmix.errors import SFTMixUserError
from sftmix.loss.mixup import align_pairs

TWO_TURNS = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                          {"role": "user", "content": "ok"}, {"role": "assistant", "content": "no"}]}
# Built-in tokenizer ids: specials <pad> <s> <|end|> <unk> <|system|> <|user|> <|assistant|> are 0..6,
# printable ASCII c is 7 + ord(c) - 32.
END, USER, ASSISTANT = 2, 5, 6
H, I, Y, O, K, N = 79, 80, 96, 86, 82, 85
X = IGNORE_INDEX


def _jsonl(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_literal_ids_match_the_tokenizer(tokenizer):
    assert tokenizer.convert_tokens_to_ids(["<|end|>", "<|user|>", "<|assistant|>", "h", "i", "y", "o", "k", "n"]) \
        == [END, USER, ASSISTANT, H, I, Y, O, K, N]


def test_two_turn_chat_trains_every_assistant_turn(tmp_path, tokenizer):
    examples = load_examples(_jsonl(tmp_path, [TWO_TURNS]))
    assert examples[0]["response"] == "no"  # the final turn: what evaluation generates
    row = tokenize_examples(examples, tokenizer, max_length=64)[0]
    assert row["input_ids"] == [USER, H, I, END, ASSISTANT, Y, O, END, USER, O, K, END, ASSISTANT, N, O, END]
    assert row["labels"] == [X, X, X, X, X, Y, O, END, X, X, X, X, X, N, O, END]


def test_two_turn_chat_last_turn_only(tmp_path, tokenizer):
    examples = load_examples(_jsonl(tmp_path, [TWO_TURNS]))
    row = tokenize_examples(examples, tokenizer, max_length=64, last_turn_only=True)[0]
    assert row["labels"] == [X] * 13 + [N, O, END]


def test_system_turn_and_truncation_inside_the_first_turn(tmp_path, tokenizer):
    rows = [{"messages": [{"role": "system", "content": "s"}] + TWO_TURNS["messages"]}]
    row = tokenize_examples(load_examples(_jsonl(tmp_path, rows)), tokenizer, max_length=9)[0]
    # <|system|> s <|end|> <|user|> h i <|end|> <|assistant|> y | o <|end|> ... cut at 9 tokens
    assert row["labels"] == [X] * 8 + [Y]


def test_fallback_template_trains_every_assistant_turn(tmp_path, tokenizer):
    tok = tokenizer.__class__(tokenizer_object=tokenizer.backend_tokenizer, eos_token="<|end|>", pad_token="<pad>")
    tok.chat_template = None
    row = tokenize_examples(load_examples(_jsonl(tmp_path, [TWO_TURNS])), tok, max_length=256)[0]
    text = tok.decode([t for t in row["labels"] if t != X])
    assert text == "yo<|end|>no<|end|>"


def test_mixup_alignment_and_scoring_use_all_assistant_tokens_in_order(tmp_path, tokenizer):
    from sftmix.data import PadCollator
    from sftmix.dynamics.scoring import score_rows
    from sftmix.toy import build_tiny_model

    one_turn = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "abcdefgh"}]}
    tokenized = tokenize_examples(load_examples(_jsonl(tmp_path, [TWO_TURNS, one_turn])), tokenizer, max_length=64)
    batch = PadCollator(0)([tokenized[0], tokenized[1]])
    aligned = align_pairs(batch["labels"][:1], batch["labels"][1:])
    # The k-th trained token of the 2-turn chat (both turns, in order) meets the k-th of the other.
    assert aligned.target_a.tolist() == [Y, O, END, N, O, END]
    assert aligned.target_b.tolist() == tokenizer.convert_tokens_to_ids(list("abcdef"))

    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    sums = score_rows(model, tokenized, np.array([0]), batch_size=1, progress=False)["trained"]
    assert sums.n_tokens[0] == 6  # the trained-token NLL averages over all six assistant tokens
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokenized[0]["input_ids"]])).logits[0, :-1]
    targets = torch.tensor(tokenized[0]["labels"][1:])
    nll = torch.nn.functional.cross_entropy(logits.double(), targets, ignore_index=X, reduction="sum")
    assert sums.nll_sum[0] == pytest.approx(nll.item(), rel=1e-4)


@pytest.mark.parametrize("role", ["wizard", "tool", "User"])
def test_unknown_role_names_file_row_field_and_role(tmp_path, role):
    rows = [TWO_TURNS, {"messages": [{"role": role, "content": "x"}, {"role": "assistant", "content": "y"}]}]
    path = _jsonl(tmp_path, rows)
    with pytest.raises(DataError) as err:
        load_examples(path)
    message = str(err.value)
    assert path in message and "row 1" in message and "messages[0].role" in message and repr(role) in message
    assert isinstance(err.value, SFTMixUserError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("column", ["id", "example_id"])
def test_id_column_is_the_example_id(tmp_path, column):
    rows = [{column: 8, "prompt": "p", "completion": "c"}, {column: 7, "prompt": "p", "completion": "c"}]
    examples = load_examples(_jsonl(tmp_path, rows))
    assert examples["example_id"] == ["8", "7"]  # identical content, distinct given ids
    assert column == "example_id" or "id" not in examples.column_names


@pytest.mark.parametrize("column", ["id", "example_id"])
def test_duplicate_id_names_both_rows(tmp_path, column):
    rows = [{column: "a", "prompt": "p1", "completion": "c"}, {column: "b", "prompt": "p2", "completion": "c"},
            {column: "a", "prompt": "p3", "completion": "c"}]
    path = _jsonl(tmp_path, rows)
    with pytest.raises(DataError, match=r"row 2.*duplicate id 'a', also at row 0"):
        load_examples(path)


def test_content_ids_without_an_id_column_stay_unique(tmp_path):
    rows = [{"prompt": "p", "completion": "c"}, {"prompt": "p", "completion": "c"}]
    ids = load_examples(_jsonl(tmp_path, rows))["example_id"]
    assert len(set(ids)) == 2
