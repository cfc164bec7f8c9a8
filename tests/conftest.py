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
