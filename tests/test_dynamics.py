"""Tests for sftmix.dynamics: metrics on literal arrays, the table, its file format, the split."""
import json

import numpy as np
import pandas as pd
import pytest

from sftmix.dynamics import (
    DatasetMismatchError,
    checkpoint_frame,
    compute_dynamics,
    dataset_fingerprint,
    load_dynamics,
    load_split,
    per_example_metrics,
    read_checkpoint_frame,
    read_checkpoint_frames,
    save_dynamics,
    save_split,
    split_by_confidence,
    summarize_checkpoints,
    write_checkpoint_frame,
)
from sftmix.io import atomic_write, atomic_write_dir


# ----------------------------------------------------------------------- metrics
def test_per_example_metrics_from_sums():
    # Example 0: 2 tokens with NLL ln 2 and ln 4, probs 1/2 and 1/4, one correct.
    # Example 1: no response token -> NaN everywhere.
    m = per_example_metrics(nll_sum=[np.log(2) + np.log(4), 0.0], prob_sum=[0.75, 0.0],
                            correct_sum=[1.0, 0.0], n_tokens=[2, 0])
    assert m["nll"][0] == pytest.approx(np.log(8) / 2)
    assert m["ppl"][0] == pytest.approx(np.sqrt(8))         # exp(mean NLL)
    assert m["gprob"][0] == pytest.approx(1 / np.sqrt(8))   # geometric mean of 1/2 and 1/4
    assert m["prob"][0] == pytest.approx(0.375)             # arithmetic mean of 1/2 and 1/4
    assert m["acc"][0] == pytest.approx(0.5)
    assert all(np.isnan(m[k][1]) for k in m)


def test_summaries_on_literal_perplexities():
    ppl = np.array([[2.0, 4.0, 6.0], [1.0, 1.0, 4.0]])
    acc = np.array([[0.0, 0.5, 1.0], [1.0, 1.0, 0.4]])
    s = summarize_checkpoints(ppl, 1 / ppl, acc)
    np.testing.assert_allclose(s["confidence"], [-4.0, -2.0])
    np.testing.assert_allclose(s["variability"], [np.sqrt(8 / 3), np.sqrt(2.0)])   # population std
    np.testing.assert_allclose(s["confidence_prob"], [11 / 36, 0.75])
    np.testing.assert_allclose(s["variability_prob"], [np.std([1 / 2, 1 / 4, 1 / 6]), np.std([1, 1, 0.25])])
    np.testing.assert_allclose(s["correctness"], [0.5, 0.8])


def test_summaries_skip_missing_checkpoints():
    ppl = np.array([[2.0, np.nan, 6.0], [np.nan, np.nan, np.nan]])
    s = summarize_checkpoints(ppl, 1 / ppl, np.zeros_like(ppl))
    assert s["confidence"][0] == pytest.approx(-4.0)
    assert s["variability"][0] == pytest.approx(2.0)
    assert np.isnan(s["confidence"][1])
    with pytest.raises(ValueError, match="one shape"):
        summarize_checkpoints(ppl, ppl[:, :2], ppl)


def test_fingerprint_is_the_set_of_ids():
    assert dataset_fingerprint(["b", "a", "c"]) == dataset_fingerprint(["a", "c", "b"])
    assert dataset_fingerprint(["a", "b"]) != dataset_fingerprint(["a", "b", "c"])
    assert dataset_fingerprint([1, 2]) == dataset_fingerprint(["1", "2"])


# ------------------------------------------------------------------------- table
def _frame(ids, ppl, name, step, acc=None):
    ppl = np.asarray(ppl, dtype=float)
    n = np.full(len(ids), 4.0)
    acc = np.zeros(len(ids)) if acc is None else np.asarray(acc, dtype=float)
    return checkpoint_frame(ids, n * np.log(ppl), n / ppl, n * acc, n, name=name, step=step,
                            fingerprint=dataset_fingerprint(ids), source="scoring")


def test_compute_dynamics_table():
    frames = [_frame(["x", "y"], [2.0, 1.0], "checkpoint-3", 3, acc=[0.0, 1.0]),
              _frame(["y", "x"], [1.0, 4.0], "checkpoint-6", 6, acc=[1.0, 0.5]),  # other row order
              _frame(["x", "y"], [6.0, 4.0], "checkpoint-9", 9, acc=[1.0, 0.4])]
    examples = pd.DataFrame({"example_id": ["y", "x"], "task": ["add", "copy"], "difficulty": [2, 1],
                             "noisy": [True, False], "response": ["r1", "r2"], "input_ids": [[1], [2]]})
    table = compute_dynamics(frames, examples).set_index("example_id")
    assert table.loc["x", "ppl_0"] == pytest.approx(2.0) and table.loc["x", "ppl_1"] == pytest.approx(4.0)
    assert table.loc["y", "gprob_2"] == pytest.approx(0.25)
    assert table.loc["y", "acc_2"] == pytest.approx(0.4)
    np.testing.assert_allclose(table.loc[["x", "y"], "confidence"], [-4.0, -2.0])
    np.testing.assert_allclose(table.loc[["x", "y"], "variability"], [np.sqrt(8 / 3), np.sqrt(2.0)])
    np.testing.assert_allclose(table.loc[["x", "y"], "correctness"], [0.5, 0.8])
    assert table.loc["y", "task"] == "add" and bool(table.loc["y", "noisy"])
    assert "response" not in table.columns and "input_ids" not in table.columns
    assert table.loc["x", "n_tokens"] == 4
    for c in range(3):
        assert {f"ppl_{c}", f"prob_{c}", f"gprob_{c}", f"acc_{c}"} <= set(table.columns)
    assert table.attrs["steps"] == [3, 6, 9]


def test_compute_dynamics_union_of_ids_gives_nan():
    table = compute_dynamics([_frame(["a", "b"], [2.0, 3.0], "w1", 1), _frame(["b", "c"], [5.0, 7.0], "w2", 2)])
    table = table.set_index("example_id")
    assert np.isnan(table.loc["a", "ppl_1"]) and np.isnan(table.loc["c", "ppl_0"])
    assert table.loc["a", "confidence"] == pytest.approx(-2.0)
    assert table.loc["b", "confidence"] == pytest.approx(-4.0)
    with pytest.raises(ValueError):
        compute_dynamics([])


def test_checkpoint_file_roundtrip(tmp_path):
    frame = _frame(["a", "b"], [2.0, 3.0], "epoch-1", 5)
    write_checkpoint_frame(frame, tmp_path / "epoch-1.parquet")
    write_checkpoint_frame(_frame(["a", "b"], [1.5, 2.5], "epoch-2", 10), tmp_path / "epoch-2.parquet")
    back = read_checkpoint_frame(tmp_path / "epoch-1.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs["step"] == 5 and back.attrs["source"] == "scoring"
    assert [f.attrs["name"] for f in read_checkpoint_frames(tmp_path)] == ["epoch-1", "epoch-2"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_save_and_load_dynamics(tmp_path):
    ids = ["a", "b", "c"]
    table = compute_dynamics([_frame(ids, [2.0, 3.0, 4.0], "c1", 1), _frame(ids, [1.0, 2.0, 8.0], "c2", 2)])
    path = save_dynamics(table, tmp_path / "dynamics.parquet", fingerprint=dataset_fingerprint(ids),
                         model_name="tiny-llama", checkpoints=[1, 2])
    back = load_dynamics(path, dataset=["c", "b", "a"])
    pd.testing.assert_frame_equal(back, table, check_like=True)
    assert back.attrs["format_version"] == "2"
    assert back.attrs["model_name"] == "tiny-llama" and back.attrs["checkpoints"] == [1, 2]
    assert back.attrs["fingerprint"] == dataset_fingerprint(ids)
    with pytest.raises(DatasetMismatchError, match="dynamics.parquet was computed on another dataset"):
        load_dynamics(path, dataset=pd.DataFrame({"example_id": ["a", "b", "d"]}))
    with pytest.raises(FileNotFoundError):
        load_dynamics(tmp_path / "missing.parquet")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")

    def failing(tmp):
        tmp.mkdir()
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write_dir(dest, failing)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left
    assert [p.name for p in dest.iterdir()] == ["old.txt"]

    def writing(tmp):
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")

    atomic_write_dir(dest, writing)
    assert [p.name for p in dest.iterdir()] == ["new.txt"]  # the old folder's files are gone
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# ------------------------------------------------------------------------- split
def _table(values, ids=None, metric="confidence"):
    ids = ids or [f"e{i}" for i in range(len(values))]
    return pd.DataFrame({"example_id": ids, metric: values})


def test_split_top_half_is_confident():
    split = split_by_confidence(_table([-5.0, -1.0, -3.0, -2.0]))
    assert split["confident"] == ["e1", "e3"] and split["unconfident"] == ["e2", "e0"]
    assert split["threshold"] == -2.0 and split["n"] == 4
    assert split["ratio"] == 0.5 and split["metric"] == "confidence"


def test_split_ratio_rounding_and_both_halves_nonempty():
    table = _table([float(i) for i in range(5)])
    assert len(split_by_confidence(table, ratio=0.5)["confident"]) == 3      # 2.5 rounds half up
    assert len(split_by_confidence(table, ratio=0.3)["confident"]) == 2      # 1.5 -> 2
    assert len(split_by_confidence(table, ratio=0.01)["confident"]) == 1     # never empty
    assert len(split_by_confidence(table, ratio=0.99)["unconfident"]) == 1


def test_split_ties_broken_by_example_id():
    table = _table([1.0, 1.0, 1.0, 1.0], ids=["d", "b", "a", "c"])
    split = split_by_confidence(table)
    assert split["confident"] == ["a", "b"] and split["unconfident"] == ["c", "d"]
    shuffled = table.sample(frac=1.0, random_state=3)
    assert split_by_confidence(shuffled) == split


def test_split_other_metrics_higher_is_more_confident():
    table = _table([0.1, 0.9, 0.5], metric="correctness")
    assert split_by_confidence(table, ratio=1 / 3, metric="correctness")["confident"] == ["e1"]


@pytest.mark.parametrize("kwargs,match", [
    ({"ratio": 0.0}, "ratio"), ({"ratio": 1.0}, "ratio"), ({"ratio": -0.2}, "ratio"),
    ({"metric": "variability"}, "unknown split metric"), ({"metric": "loss"}, "unknown split metric"),
])
def test_split_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_by_confidence(_table([1.0, 2.0, 3.0]), **kwargs)


def test_split_rejects_tiny_or_incomplete_tables():
    with pytest.raises(ValueError, match="at least 2"):
        split_by_confidence(_table([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        split_by_confidence(_table([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="duplicate"):
        split_by_confidence(_table([1.0, 2.0], ids=["a", "a"]))


def test_split_file_roundtrip(tmp_path):
    split = split_by_confidence(_table([3.0, 1.0, 2.0, 0.0]))
    path = save_split(split, tmp_path / "split.json")
    assert load_split(path) == split
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"confident": ["a"], "unconfident": ["a", "b"]}))
    with pytest.raises(ValueError, match="both halves"):
        load_split(bad)
    with pytest.raises(FileNotFoundError):
        load_split(tmp_path / "none.json")
