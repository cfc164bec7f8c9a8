"""Shared fixtures: the offline tokenizer and small slices of the built-in suite; how tests share out.

``make test`` runs the suite on every core with pytest-xdist (``--dist loadfile``). Each file's
tests stay on one worker, so a module's fixtures (trained tiny models, finished runs) are built
once; the files in ``LONG_FIRST`` are handed out first, so the longest file does not start
last and leave one core idle at the end. No test depends on another's order or files: each
writes under its own ``tmp_path`` (notebooks execute with their own ``SFTMIX_RUNS_DIR``); the
numba cache (``NUMBA_CACHE_DIR``) is shared, which numba allows (it writes its cache files to
temporary names and renames them into place); converted GGUF models are shared behind a
file lock (:mod:`sftmix.convert`).
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# One thread: tests also run notebook kernels and worker processes beside pytest, and
# oversubscribed OpenMP threads slow tiny models down many times over.
torch.set_num_threads(1)


#: The longest test files (minutes each on one core), run first.
LONG_FIRST = ("test_notebooks.py", "test_real_model.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


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
