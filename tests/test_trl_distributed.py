"""SFTMixTRLTrainer and DynamicsCallback on two processes (torchrun, gloo, CPU)."""

import json
from pathlib import Path

import pytest

from .helpers import run_two_processes

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_two_processes_train_disjoint_rows_and_score_like_score_checkpoints(tmp_path):
    run_two_processes(HERE / "_dist_trl.py", tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world_size"] == 2 and result["n_frames"] == result["n_checkpoints"] == 2
    assert result["max_abs_diff"] < 1e-5
    assert result["losses"] and all(h["mixup_loss"] > 0 for h in result["losses"])
    first, second = result["trained"]
    # 2 epochs x 2 steps x 4 rows per process; each step's two batches hold different examples.
    assert len(first) == len(second) == 16
    for step in range(4):
        assert not set(first[4 * step:4 * step + 4]) & set(second[4 * step:4 * step + 4])
