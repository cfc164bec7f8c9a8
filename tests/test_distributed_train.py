"""Two CPU processes (torchrun, gloo): SFTMix training and the staged pipeline.

One launch of tests/_dist_train.py trains SFTMix with two processes and runs a tiny
experiment; the tests read what each process recorded.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BATCH, N_TRAIN, experiment_config, run_two_processes

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist_train")
    run_two_processes(HERE / "_dist_train.py", out)
    return out


def _batches(out: Path) -> list[list[dict]]:
    return [json.loads((out / f"rank{k}_batches.json").read_text()) for k in (0, 1)]


def test_every_process_gets_balanced_paired_batches(two_processes):
    ranks = _batches(two_processes)
    # The split in _dist_train.py: rows 0..31 confident, 32..63 unconfident.
    confident, half = set(range(N_TRAIN // 2)), BATCH // 2
    steps_per_epoch = N_TRAIN // (2 * BATCH)
    assert len(ranks[0]) == len(ranks[1]) == 4 * steps_per_epoch            # 4 epochs
    for batches in ranks:
        for b in batches:
            assert len(b["rows"]) == BATCH
            assert set(b["rows"][:half]) <= confident, b                     # first half confident
            assert not set(b["rows"][half:]) & confident, b                  # second half unconfident
    for b0, b1 in zip(*ranks):
        assert b0["step"] == b1["step"]
        assert not set(b0["rows"]) & set(b1["rows"]), (b0, b1)               # different examples per process
    # Together, the two processes see every example exactly once per epoch.
    for epoch in range(4):
        seen = [r for batches in ranks for b in batches if b["epoch"] == epoch for r in b["rows"]]
        assert sorted(seen) == list(range(N_TRAIN)), epoch


def test_two_process_sftmix_loss_is_finite_and_decreases(two_processes):
    history = json.loads((two_processes / "train" / "log_history.json").read_text())
    logged = [e for e in history if "loss" in e]
    assert len(logged) >= 4
    for e in logged:
        assert all(math.isfinite(e[k]) for k in ("loss", "ntp_loss", "mixup_loss")), e
        # The logged loss is the global one (not multiplied by the number of processes).
        assert e["loss"] == pytest.approx(e["ntp_loss"] + 0.2 * e["mixup_loss"], rel=0.02)
    assert logged[-1]["ntp_loss"] < logged[0]["ntp_loss"] - 0.3
    assert (two_processes / "train" / "model.safetensors").exists()


def test_pipeline_runs_collective_stages_everywhere_and_the_rest_on_main(two_processes):
    main, other = (json.loads((two_processes / f"rank{k}_stages.json").read_text()) for k in (0, 1))
    assert main["world"] == other["world"] == 2
    # The embeddings come from the reference run, so they are computed before training.
    assert main["ran"] == ["reference_stage", "dynamics_stage", "prune_stage", "split_stage", "embeddings_stage",
                           "train_stage", "eval_stage"]
    assert other["ran"] == ["reference_stage", "dynamics_stage", "train_stage"]
    assert main["per_seed"] == other["per_seed"] and main["per_seed"]["sftmix"]["0"]["n_examples"] == 16
    assert main["failure"] == "ZeroDivisionError: division by zero"
    assert other["failure"] == "RuntimeError: a failing step failed on the main process: " \
                               "ZeroDivisionError: division by zero"
    run = two_processes / "runs" / "dist"
    marks = sorted(p.stem for p in (run / "stages").glob("*.json"))
    assert marks == ["dynamics", "embeddings", "eval__sftmix__seed0", "prune", "reference", "split",
                     "train__sftmix__seed0"]
    for f in ("results.json", "results.md", "split.json", "dynamics.parquet", "projection.parquet",
              "sftmix/seed0/eval.json", "sftmix/seed0/model.safetensors", "reference/checkpoints.json"):
        assert (run / f).is_file(), f
    assert not list(run.rglob("*.tmp*")) and not list(run.glob("sftmix/seed0/checkpoint-*"))
    # Reference checkpoints keep weights only; no process left a pickled file behind.
    assert not [p for p in run.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]


def test_two_process_dynamics_equal_one_process(two_processes, tmp_path):
    """Reference run with 2 x 16 per step vs 1 x 32: the same steps, so the same table."""
    from sftmix.dynamics import load_dynamics
    from sftmix.pipeline import stages
    from sftmix.pipeline.context import open_run

    config = experiment_config(tmp_path, 32)
    ctx = open_run(config, progress=False)
    stages.reference_stage(ctx)
    stages.dynamics_stage(ctx)
    one = load_dynamics(config.run_dir / "dynamics.parquet")
    two = load_dynamics(two_processes / "runs" / "dist" / "dynamics.parquet")
    assert list(one["example_id"]) == list(two["example_id"])
    assert one.attrs["fingerprint"] == two.attrs["fingerprint"]
    for column in one.columns:
        if one[column].dtype.kind == "f":
            # variability is a difference of nearly equal perplexities (means over a few content
            # tokens; the two runs sum gradients in another order): a looser tolerance
            tol = 5e-4 if column.startswith("variability") else 1e-5
            np.testing.assert_allclose(two[column], one[column], rtol=tol, atol=1e-7, err_msg=column)


def test_cpu_processes_that_would_each_train_alone_are_refused(two_processes):
    for k in (0, 1):
        error = json.loads((two_processes / f"rank{k}_misuse.json").read_text())["error"]
        assert error and "launched as 2 processes" in error and "--use_cpu True" in error
