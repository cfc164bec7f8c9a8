"""Two CPU processes (torchrun, gloo) score and record the same table as one process."""
import json
from pathlib import Path

import numpy as np
import pytest

from sftmix.data import load_examples, tokenize_examples
from sftmix.dynamics import read_checkpoint_frame, read_checkpoint_frames
from sftmix.dynamics.scoring import score_checkpoints
from sftmix.toy import build_toy_tokenizer
from tests.helpers import run_two_processes

HERE = Path(__file__).resolve().parent
N = 37  # odd: the two shards are uneven


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run_two_processes(HERE / "_dist_score.py", out, N)
    return out


def test_two_processes_score_every_example_exactly_once(two_process_run):
    ranks = [json.loads((two_process_run / f"rank{k}.json").read_text()) for k in (0, 1)]
    rows = [r["rows"] for r in ranks]
    assert sorted(len(r) for r in rows) == [N // 2, N // 2 + 1]
    assert sorted(rows[0] + rows[1]) == list(range(N))
    assert all(r["n_scored"] == N and r["n_processes"] == 2 for r in ranks)


def test_two_processes_give_the_one_process_table(two_process_run, tmp_path):
    checkpoint = json.loads((two_process_run / "rank0.json").read_text())["checkpoints"][0]
    two = read_checkpoint_frame(two_process_run / "scores" / f"{Path(checkpoint).name}.parquet")
    data = tokenize_examples(load_examples("builtin", n_train=N, n_test=1, seed=3), build_toy_tokenizer(),
                             max_length=96)
    one = score_checkpoints([checkpoint], data, out_dir=tmp_path, progress=False)[0]
    assert list(two["example_id"]) == list(one["example_id"]) and len(two) == N
    for column in ("ppl", "prob", "gprob", "acc", "n_tokens"):
        np.testing.assert_allclose(two[column], one[column], rtol=1e-5, err_msg=column)
    # Online recording under two processes: sums gathered at the close; lr=0, so it
    # equals scoring (an example repeated to even out the shards is averaged).
    online = read_checkpoint_frames(two_process_run / "reference" / "online")
    assert len(online) == 1 and online[0]["ppl"].notna().all()
    for column in ("ppl", "prob", "acc"):
        np.testing.assert_allclose(online[0][column], one[column], rtol=1e-4, err_msg=column)
