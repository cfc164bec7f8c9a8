"""Training samplers: the paired sampler (every batch is [confident half, unconfident half], so
pair k is (k, k + B/2)) and, for NTP, random batches grouped by length."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from ..recipe import PAIRINGS

__all__ = ["LengthWindowSampler", "PairedSampler", "pair_rows"]


class PairedSampler(Sampler[int]):
    """Indices laid out so that each block of ``batch_size`` is [a_1..a_h, b_1..b_h].

    An epoch has ``len(group_a) + len(group_b)`` examples, as in NTP, i.e. ``N // 2``
    pairs, cut to whole batches. Each group is drawn without replacement and re-shuffled
    when exhausted, so every example of the smaller group is seen at least once per
    epoch and the larger group is covered once at most. ``group_b=None`` pairs random
    examples of ``group_a`` with each other (the 'random' pairing ablation).

    ``lengths`` (token count per dataset row) turns on length-aware batching, for less
    padding: the drawn examples are cut into windows of ``window`` batches; inside a window
    each half is sorted by length and dealt out in order, so batch ``k`` holds the ``k``-th
    longest confident examples and the ``k``-th longest unconfident ones. The rows of each
    half are then shuffled inside their batch (pairs stay random among examples of similar
    length) and the batches of the epoch are shuffled. Which examples an epoch sees does not
    change, only how they are grouped.
    """

    def __init__(self, group_a: list[int], group_b: list[int] | None, batch_size: int, *, seed: int = 0,
                 lengths: list[int] | None = None, window: int = 8):
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size must be even and >= 2, got {batch_size}")
        self.group_a, self.group_b = list(group_a), None if group_b is None else list(group_b)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        total = len(self.group_a) + (len(self.group_b) if self.group_b is not None else 0)
        self.num_batches = max(1, (total // 2) // (batch_size // 2))
        if window < 1:
            raise ValueError(f"window must be >= 1 batch, got {window}")
        self.lengths, self.window = lengths, window

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
        if self.lengths is not None:
            batches = self._group_by_length(a, b, gen)
        else:
            batches = [(a[k * half:(k + 1) * half], b[k * half:(k + 1) * half]) for k in range(self.num_batches)]
        for rows_a, rows_b in batches:
            yield from rows_a
            yield from rows_b

    def _group_by_length(self, a: list[int], b: list[int], gen: torch.Generator) -> list[tuple[list, list]]:
        half = self.batch_size // 2
        batches_a = _length_windows(a, self.lengths, half, self.window, gen)
        batches_b = _length_windows(b, self.lengths, half, self.window, gen)
        batches = [(_shuffled(x, gen), _shuffled(y, gen)) for x, y in zip(batches_a, batches_b)]
        return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


class LengthWindowSampler(Sampler[int]):
    """NTP's random batches grouped by length: each epoch shuffles all ``len(lengths)`` rows,
    sorts each window of ``window`` batches by length, cuts it into batches and shuffles the
    batches. Every row is seen once per epoch (the last batch may be short)."""

    def __init__(self, lengths: list[int], batch_size: int, *, window: int = 8, seed: int = 0):
        if batch_size < 1 or window < 1:
            raise ValueError(f"batch_size and window must be >= 1, got {batch_size} and {window}")
        self.lengths, self.batch_size, self.window, self.seed, self.epoch = list(lengths), batch_size, window, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        rows = torch.randperm(len(self.lengths), generator=gen).tolist()
        batches = _length_windows(rows, self.lengths, self.batch_size, self.window, gen)
        for k in torch.randperm(len(batches), generator=gen).tolist():
            yield from batches[k]


def _length_windows(rows: list[int], lengths, batch_size: int, window: int, gen) -> list[list[int]]:
    """Cut ``rows`` (in drawn order) into windows of ``window`` batches; sort each window by
    length (longest first) and cut it into batches of ``batch_size``."""
    step, batches = window * batch_size, []
    for start in range(0, len(rows), step):
        chunk = sorted(rows[start:start + step], key=lambda i: -lengths[i])
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    return batches


def _shuffled(rows: list[int], gen: torch.Generator) -> list[int]:
    return [rows[i] for i in torch.randperm(len(rows), generator=gen).tolist()]


def pair_rows(batch_size: int, pairing: str, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (a, b) of a paired batch that are mixed, for a pairing of :data:`sftmix.recipe.PAIRINGS`.

    ``labels`` (B, T), the batch's labels, is needed by pairings that look at the examples
    (``"length_matched"``); the others only need ``batch_size``.
    """
    if labels is not None and labels.shape[0] != batch_size:
        raise ValueError(f"labels has {labels.shape[0]} rows for a batch of {batch_size}")
    return PAIRINGS[pairing].rows(batch_size, labels)
