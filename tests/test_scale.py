"""The 200k data path (benchmarks/measure_200k.py) at 5k examples: load, tokenize in 2 processes, score."""

import pandas as pd
import pytest

from sftmix.data import load_examples, tokenize_examples
from sftmix.dynamics.scoring import score_checkpoints
from sftmix.toy import build_tiny_model

N = 5000


@pytest.fixture(scope="module")
def examples():
    return load_examples("builtin", n_train=N, n_test=0)


def test_tokenizing_in_two_processes_and_scoring_give_the_one_process_result(examples, tokenizer, tmp_path):
    assert len(examples) == N and examples["example_id"][0] != examples["example_id"][1]
    one = tokenize_examples(examples, tokenizer, max_length=128)
    two = tokenize_examples(examples, tokenizer, max_length=128, num_proc=2)
    assert two.features == one.features and len(two) == len(one) == N
    assert two.to_dict() == one.to_dict()                                  # same rows, same order
    assert list(two["example_index"]) == list(range(N))                    # row keys stay global

    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=16, num_heads=2, seed=0)
    frames = [score_checkpoints([("tiny", model)], data, out_dir=tmp_path / name, progress=False)[0]
              for name, data in (("one", one), ("two", two))]
    assert frames[0].attrs["n_scored"] == N and frames[0]["ppl"].notna().all()
    pd.testing.assert_frame_equal(frames[1], frames[0], check_exact=True)
