"""Helpers shared by several test modules and by the child-process scripts the tests launch.

The scripts themselves (``_dist_score.py``, ``_dist_train.py``, ``_experiment_child.py``)
stay files of their own: ``torchrun`` and ``python -m`` run them as programs.
"""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from sftmix.config import RecipeArguments
from sftmix.pipeline.experiment_config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPE_FIELDS = {f.name for f in dataclasses.fields(RecipeArguments)}

#: The two-process training test: examples and per-process batch size.
N_TRAIN = 64
BATCH = 8


def tiny_config(runs_dir, name="tiny", **overrides) -> ExperimentConfig:
    """A whole experiment in seconds: a 16-wide tiny model on 96 examples."""
    spec = dict(
        name=name, runs_dir=str(runs_dir), seeds=[0], methods=["ntp", "sftmix"],
        model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": 16, "tiny_heads": 2},
        data={"n_train": 96, "n_test": 16, "max_length": 96},
        training={"num_train_epochs": 2, "per_device_train_batch_size": 16, "learning_rate": 3e-3,
                  "logging_steps": 2},
        reference_training={"num_train_epochs": 1}, recipe={"n_checkpoints": 2}, projection="pca", figures=False,
        max_new_tokens=16)
    recipe = {k: overrides.pop(k) for k in list(overrides) if k in RECIPE_FIELDS}  # recipe: keys by keyword
    spec.update(overrides)
    spec["recipe"] = {**spec["recipe"], **recipe}
    return ExperimentConfig(**spec)


def experiment_config(runs_dir: Path, reference_batch: int) -> ExperimentConfig:
    """The 2-process experiment; the 1-process run in the test uses twice the reference batch."""
    return tiny_config(runs_dir, name="dist", methods=["sftmix"],
                       reference_training={"num_train_epochs": 1, "per_device_train_batch_size": reference_batch})


def run_two_processes(script, *args, timeout=300):
    """Run ``script`` under ``torchrun --standalone --nproc-per-node 2`` (gloo on CPU); fail with its stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
