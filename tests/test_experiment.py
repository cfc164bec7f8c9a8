"""The staged pipeline: skipping, config-change invalidation, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sftmix.pipeline.experiment import run_experiment
from tests.helpers import tiny_config

ROOT = Path(__file__).resolve().parents[1]


def _mtimes(run: Path) -> dict:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*")
            if p.is_file() and "stages" not in p.parts and p.name not in ("results.json", "results.md",
                                                                           "config.json", "config.yaml")}


def _per_seed(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())["per_seed"]


def test_rerun_skips_every_stage_and_changes_rerun_only_dependents(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(tmp_path)
    first = run_experiment(config, progress=False)
    run = config.run_dir
    for f in ("dynamics.parquet", "split.json", "ntp/seed0/eval.json", "sftmix/seed0/eval.json",
              "projection.parquet", "results.md", "ntp/seed0/model.safetensors"):
        assert (run / f).exists(), f
    assert not list(run.glob("*/seed0/checkpoint-*"))           # intermediate checkpoints cleaned
    before = _mtimes(run)
    again = run_experiment(config, progress=False)
    assert _mtimes(run) == before                              # nothing recomputed
    assert again["per_seed"] == first["per_seed"]

    changed = tiny_config(tmp_path, split_ratio=0.4)
    run_experiment(changed, progress=False)
    after = _mtimes(run)
    same = lambda f: after[f] == before[f]
    assert same("dynamics.parquet") and same("reference/checkpoints.json")        # upstream kept
    assert same("ntp/seed0/eval.json") and same("ntp/seed0/model.safetensors")    # NTP does not use the split
    assert not same("split.json") and not same("sftmix/seed0/eval.json")          # dependents re-ran
    split = json.loads((run / "split.json").read_text())
    assert len(split["confident"]) == round(0.4 * 96)


@pytest.mark.slow
def test_sigkill_anywhere_then_rerun_gives_the_uninterrupted_results(tmp_path):
    reference = tiny_config(tmp_path / "a", name="x")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "tests._experiment_child", str(tmp_path / "a"), "x"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    # Kill a second run at two moments: right after the split, and inside SFTMix training.
    killed_run = tmp_path / "b" / "x"
    for marker in ("stages/split.json", "sftmix/seed0/checkpoint-*"):
        proc = subprocess.Popen([sys.executable, "-m", "tests._experiment_child", str(tmp_path / "b"), "x"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not list(killed_run.glob(marker)):
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run([sys.executable, "-m", "tests._experiment_child", str(tmp_path / "b"), "x"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    assert _per_seed(killed_run) == _per_seed(reference.run_dir)
    import pandas as pd
    a = pd.read_parquet(reference.run_dir / "dynamics.parquet")
    b = pd.read_parquet(killed_run / "dynamics.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert not list(killed_run.rglob("*.tmp*"))                # no half-written files left behind


def test_ntp_run_of_the_first_seed_is_the_reference_run(tmp_path):
    """With nothing setting the reference apart, NTP seed 0 is taken from the reference run, and
    it equals what training NTP seed 0 again gives (same base, data, seed, settings)."""
    from safetensors.torch import load_file

    reused = tiny_config(tmp_path, name="reused", reference_training={}, seeds=[0, 1],
                         training={"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 3e-3,
                                   "logging_steps": 2, "eval_strategy": "epoch"})
    assert reused.reference_is_ntp_run
    run_experiment(reused, progress=False)
    run = reused.run_dir
    ckpts = json.loads((run / "reference" / "checkpoints.json").read_text())
    copied = load_file(run / "ntp" / "seed0" / "model.safetensors")
    last = load_file(Path(ckpts[-1]) / "model.safetensors")
    assert all(torch.equal(copied[k], last[k]) for k in last)
    history = json.loads((run / "ntp" / "seed0" / "log_history.json").read_text())
    assert sum("eval_loss" in e for e in history) == 2          # the held-out curve, one point per epoch
    assert (run / "ntp" / "seed1" / "model.safetensors").exists()  # other seeds train as usual
    # The fit table scores the held-out set at every reference checkpoint; the last one is the
    # NTP model, so its held-out NLL is the one the evaluation reports.
    import pandas as pd
    fit = pd.read_csv(run / "fit.csv")
    assert fit["step"].tolist() == [int(Path(c).name.split("-")[1]) for c in ckpts]
    evaluated = json.loads((run / "ntp" / "seed0" / "eval.json").read_text())
    # (Both over the tokens that enter confidence: by default the content, no end-of-turn marker.)
    assert reused.recipe_args().confidence_tokens == "content"
    assert fit["held_out"].iloc[-1] == pytest.approx(evaluated["content_nll"], rel=1e-5)
    assert json.loads((run / "results.json").read_text())["fit"][-1]["held_out"] == pytest.approx(
        evaluated["content_nll"], rel=1e-5)

    separate = tiny_config(tmp_path, name="separate", reference_training={}, seeds=[0], ntp_from_reference=False,
                           training=reused.training)
    assert not separate.reference_is_ntp_run
    run_experiment(separate, progress=False)
    trained = load_file(separate.run_dir / "ntp" / "seed0" / "model.safetensors")
    assert all(torch.allclose(trained[k], copied[k], atol=1e-5) for k in copied)
    # A reference run with its own settings is never reused.
    assert not tiny_config(tmp_path).reference_is_ntp_run


def test_retrained_reference_is_scored_again_not_read_from_the_old_scores(tmp_path):
    """A changed reference setting retrains the reference run into the same folder with the same
    checkpoint names: the dynamics must come from the new checkpoints, as in a fresh directory."""
    import pandas as pd

    def dynamics(runs_dir, lr):
        config = tiny_config(runs_dir, methods=["sftmix"], embeddings=False,
                             reference_training={"num_train_epochs": 1, "learning_rate": lr})
        run_experiment(config, until="dynamics", progress=False)
        return pd.read_parquet(config.run_dir / "dynamics.parquet"), config.run_dir

    first, run = dynamics(tmp_path / "reused", 3e-3)
    (run / "reference" / "checkpoint-999").mkdir()             # a leftover of some other configuration
    changed, run = dynamics(tmp_path / "reused", 3e-2)
    fresh, _ = dynamics(tmp_path / "fresh", 3e-2)
    assert not changed["confidence"].equals(first["confidence"])
    pd.testing.assert_series_equal(changed["confidence"], fresh["confidence"])
    assert not (run / "reference" / "checkpoint-999").exists()  # the reference folder holds this run only


def test_reference_keeps_only_its_last_weights_and_retrains_when_rescoring_needs_them(tmp_path):
    """reference_weights="last": once scored, earlier reference checkpoints lose their weights (a
    real model's checkpoint is its full weights) but keep their scores; a change that needs new
    scores (confidence_tokens) retrains the reference, giving what a directory that kept every
    checkpoint's weights gives."""
    import pandas as pd

    def run(runs_dir, **over):
        config = tiny_config(runs_dir, methods=["sftmix"], embeddings=False, **over)
        run_experiment(config, until="prune", progress=False)
        return config.run_dir

    pruned = run(tmp_path / "pruned")
    checkpoints = [Path(c) for c in json.loads((pruned / "reference" / "checkpoints.json").read_text())]
    assert len(checkpoints) == 2
    assert not list(checkpoints[0].glob("*.safetensors"))       # weights gone, scores kept
    assert (pruned / "reference" / "scores" / f"{checkpoints[0].name}.parquet").exists()
    assert (checkpoints[-1] / "model.safetensors").exists()       # the last stays (embeddings, NTP)
    kept = run(tmp_path / "kept", reference_weights="all")
    assert (Path(json.loads((kept / "reference" / "checkpoints.json").read_text())[0]) / "model.safetensors").exists()

    pruned = run(tmp_path / "pruned", confidence_tokens="trained")
    kept = run(tmp_path / "kept", reference_weights="all", confidence_tokens="trained")
    pd.testing.assert_frame_equal(pd.read_parquet(pruned / "dynamics.parquet"),
                                  pd.read_parquet(kept / "dynamics.parquet"))
