"""Preparing any data set for an experiment: long examples, held-out and training samples, swapped answers."""

import json

import pytest

from sftmix.config import DataArguments
from sftmix.data import load_examples
from sftmix.data.noise import swap_responses
from sftmix.data.prepare import prepare_train_eval, rendered_lengths


def _file(tmp_path, n=40):
    rows = [{"id": f"c{i}", "prompt": f"Question number {i}?", "response": f"Answer {i}" + " and more" * (i % 7)}
            for i in range(n)]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_swapped_answers_are_a_derangement_of_exactly_the_noisy_rows(tmp_path):
    examples = load_examples(str(_file(tmp_path)))
    swapped = swap_responses(examples, 0.25, seed=3)
    noisy = swapped["noisy"]
    assert sum(noisy) == 10
    before, after = examples["response"], swapped["response"]
    changed = [i for i in range(len(after)) if after[i] != before[i]]
    assert changed == [i for i, flag in enumerate(noisy) if flag]        # the noisy rows, and only they
    assert sorted(after[i] for i in changed) == sorted(before[i] for i in changed)  # their own answers, permuted
    assert swapped["messages"] == examples["messages"] and swapped["example_id"] == examples["example_id"]
    assert swap_responses(examples, 0.25, seed=3)["response"] == after   # deterministic
    assert swap_responses(examples, 0.25, seed=4)["response"] != after
    assert sum(swap_responses(examples, 0.0)["noisy"]) == 0
    with pytest.raises(ValueError, match="one example"):
        swap_responses(examples.select(range(4)), 0.25)


def test_prepare_drops_long_examples_then_samples_held_out_and_train_then_swaps(tmp_path, tokenizer):
    path = _file(tmp_path)
    examples = load_examples(str(path))
    lengths = rendered_lengths(examples, tokenizer)
    cap = sorted(lengths)[29]  # 30 examples fit
    args = DataArguments(dataset=str(path), max_length=cap, drop_overlong=True, held_out_size=6, train_size=20,
                         noise=0.1, selection_seed=1)
    train, held_out, report = prepare_train_eval(args, tokenizer, return_report=True)
    assert (report.loaded, report.dropped_overlong, report.held_out, report.train, report.noisy) == (40, 10, 6, 20, 2)
    assert len(report.lines()) == 4 and "max_length" in report.lines()[0]
    fitting = {e for e, n in zip(examples["example_id"], lengths) if n <= cap}
    assert set(train["example_id"]) | set(held_out["example_id"]) <= fitting
    assert not set(train["example_id"]) & set(held_out["example_id"])
    assert "noisy" not in held_out.column_names and sum(train["noisy"]) == 2
    again = prepare_train_eval(args, tokenizer)
    assert again[0]["example_id"] == train["example_id"]                 # seeded: the same sets every time


def test_prepare_leaves_the_builtin_suite_and_plain_files_alone(tmp_path, tokenizer):
    path = _file(tmp_path, n=12)
    train, held_out = prepare_train_eval(DataArguments(dataset=str(path)))
    assert len(train) == 12 and held_out is None and "noisy" not in train.column_names
    suite, test = prepare_train_eval(DataArguments(n_train=16, n_test=4, noise=0.25))
    assert len(suite) == 16 and len(test) == 4 and sum(suite["noisy"]) == 4   # the suite's own noise
    with pytest.raises(ValueError, match="tokenizer"):
        prepare_train_eval(DataArguments(dataset=str(path), drop_overlong=True))


def test_exact_repeats_are_dropped_before_anything_is_sampled(tmp_path):
    rows = [{"id": f"c{i}", "prompt": f"Q{i % 5}", "response": f"A{i % 5}"} for i in range(12)]
    path = tmp_path / "dups.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    train, held_out, report = prepare_train_eval(DataArguments(dataset=str(path), drop_duplicates=True,
                                                               held_out_size=2), return_report=True)
    assert report.dropped_duplicates == 7 and len(train) + len(held_out) == 5
    texts = [m[0]["content"] for m in list(train["messages"]) + list(held_out["messages"])]
    assert sorted(texts) == ["Q0", "Q1", "Q2", "Q3", "Q4"]
