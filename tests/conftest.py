"""Shared fixtures: the offline tokenizer and small slices of the built-in suite."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# One thread: tests also run notebook kernels and worker processes beside pytest, and
# oversubscribed OpenMP threads slow tiny models down many times over.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    from sftmix.toy import build_toy_tokenizer

    return build_toy_tokenizer()


@pytest.fixture(scope="session")
def suite_examples():
    """Canonical train/test examples of a small built-in suite."""
    from sftmix.data import load_examples

    kwargs = dict(n_train=256, n_test=64, seed=0, noise=0.0)
    return load_examples("builtin", split="train", **kwargs), load_examples("builtin", split="test", **kwargs)


def run_two_processes(script, *args, timeout=300):
    """Run ``script`` under ``torchrun --standalone --nproc-per-node 2`` (gloo on CPU); fail with its stderr."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), *map(str, args)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=root)
    assert done.returncode == 0, done.stderr[-4000:]
