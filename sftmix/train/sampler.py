"""The paired sampler: every batch is [confident half, unconfident half], so pair k is (k, k + B/2)."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

__all__ = ["PairedSampler", "pair_rows"]


class PairedSampler(Sampler[int]):
    """Indices laid out so that each block of ``batch_size`` is [a_1..a_h, b_1..b_h].

    An epoch has ``len(group_a) + len(group_b)`` examples, as in NTP, i.e. ``N // 2``
    pairs, cut to whole batches. Each group is drawn without replacement and re-shuffled
    when exhausted, so every example of the smaller group is seen at least once per
    epoch and the larger group is covered once at most. ``group_b=None`` pairs random
    examples of ``group_a`` with each other (the 'random' pairing ablation).
    """

    def __init__(self, group_a: list[int], group_b: list[int] | None, batch_size: int, *, seed: int = 0):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size must be even and >= 2, got {batch_size}")
        self.group_a, self.group_b = list(group_a), None if group_b is None else list(group_b)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        total = len(self.group_a) + (len(self.group_b) if self.group_b is not None else 0)
        self.num_batches = max(1, (total // 2) // (batch_size // 2))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    @staticmethod
    def _draw(group: list[int], n: int, gen: torch.Generator) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            perm = torch.randperm(len(group), generator=gen).tolist()
            out.extend(group[i] for i in perm[: n - len(out)])
        return out

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        half = self.batch_size // 2
        n = self.num_batches * half
        if self.group_b is None:
            pool = self._draw(self.group_a, 2 * n, gen)
            a, b = pool[:n], pool[n:]
        else:
            a, b = self._draw(self.group_a, n, gen), self._draw(self.group_b, n, gen)
        for k in range(self.num_batches):
            yield from a[k * half:(k + 1) * half]
            yield from b[k * half:(k + 1) * half]


def pair_rows(batch_size: int, pairing: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (a, b) of a paired batch that are mixed, for a pairing strategy."""
    half = batch_size // 2
    if pairing in ("confident_unconfident", "random"):
        return torch.arange(half), torch.arange(half, 2 * half)
    quarter = half // 2
    start = 0 if pairing == "confident_confident" else half
    return torch.arange(start, start + quarter), torch.arange(start + quarter, start + 2 * quarter)
