"""Label noise for any data set: swap assistant answers between conversations.

The built-in suite corrupts its own answers (:mod:`sftmix.toy.tasks`). For other data,
:func:`swap_responses` picks ``round(fraction * N)`` examples at random and gives each the
final assistant answer of another picked example (a derangement: no example keeps its
own). Every answer is still a real, fluent answer -- to another question -- so a model's
confidence has to notice the mismatch, not bad text. The picked rows get ``noisy=True``
(the others ``False``), which the dynamics table, the noise AUROC and the figures read.
"""

from __future__ import annotations

import random

import datasets

__all__ = ["swap_responses"]


def _derangement(n: int, rng: random.Random) -> list[int]:
    """A random permutation of ``range(n)`` with no fixed point (n >= 2)."""
    while True:
        order = list(range(n))
        rng.shuffle(order)
        if all(i != j for i, j in enumerate(order)):
            return order


def swap_responses(examples: datasets.Dataset, fraction: float, *, seed: int = 0) -> datasets.Dataset:
    """``examples`` with ``round(fraction * N)`` final answers swapped among themselves; adds ``noisy``.

    Deterministic in ``seed``. Prompts, earlier turns and ids are untouched; a swapped answer
    is never an example's own (nor a copy of it: picked rows with identical answers are
    avoided where possible by the derangement over distinct texts).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"noise must be a fraction in [0, 1), got {fraction}")
    if "noisy" in examples.column_names:
        raise ValueError("these examples already carry a noisy column (their own label noise)")
    n = len(examples)
    k = round(fraction * n)
    responses = list(examples["response"])
    noisy = [False] * n
    if k >= 2:
        rng = random.Random(f"sftmix-swap:{seed}")
        picked = sorted(rng.sample(range(n), k))
        order = _derangement(k, rng)
        swapped = {picked[i]: responses[picked[j]] for i, j in enumerate(order)}
        for row, text in swapped.items():
            if text != responses[row]:  # identical answers would not be noise
                noisy[row] = True
        responses = [swapped.get(i, r) for i, r in enumerate(responses)]
    elif k == 1:
        raise ValueError(f"noise={fraction} corrupts one example of {n}: an answer can only be swapped with "
                         "another; use a larger fraction or more examples")
    out = examples.remove_columns("response").add_column("response", responses)
    return out.add_column("noisy", noisy)
