"""Per-example token statistics by name: what scoring, the online recorder and evaluation hand on.

A :class:`TokenSums` holds, for N examples, sums over each example's tokens of one token set
(the trained tokens, or the content tokens; see :mod:`sftmix.data.tokenize`): ``nll_sum``
(gold-token NLL), ``prob_sum`` (gold-token probability ``exp(-nll)``), ``correct_sum``
(``argmax == gold``) and ``n_tokens``. Code reads a statistic by its name, never by a
column position, so adding one means adding a field here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["STATISTICS", "TokenSums"]


@dataclass
class TokenSums:
    """Per-example sums over one token set: float64 arrays of shape (N,)."""

    nll_sum: np.ndarray
    prob_sum: np.ndarray
    correct_sum: np.ndarray
    n_tokens: np.ndarray

    @classmethod
    def full(cls, n: int, value: float = 0.0) -> "TokenSums":
        """N examples, every statistic ``value`` (0 for an accumulator, NaN for "not scored")."""
        return cls(*(np.full(n, value, dtype=np.float64) for _ in STATISTICS))

    @classmethod
    def from_stacked(cls, stacked: np.ndarray) -> "TokenSums":
        """From a (len(STATISTICS), N) array in :data:`STATISTICS` order (see :meth:`stacked`)."""
        stacked = np.asarray(stacked, dtype=np.float64)
        if stacked.ndim != 2 or stacked.shape[0] != len(STATISTICS):
            raise ValueError(f"expected a ({len(STATISTICS)}, N) array, got shape {stacked.shape}")
        return cls(*stacked)

    def __len__(self) -> int:
        return len(self.n_tokens)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{name: (N,) array}``, in :data:`STATISTICS` order."""
        return {name: getattr(self, name) for name in STATISTICS}

    def stacked(self) -> np.ndarray:
        """A (len(STATISTICS), N) float64 array, for one collective reduction across processes."""
        return np.stack([np.asarray(v, dtype=np.float64) for v in self.as_dict().values()])

    def take(self, rows) -> "TokenSums":
        """The examples at ``rows`` (an index array or boolean mask)."""
        return TokenSums(**{name: np.asarray(v)[rows] for name, v in self.as_dict().items()})

    def put(self, rows, other: "TokenSums") -> None:
        """Set the examples at ``rows`` to ``other``'s (in place)."""
        for name in STATISTICS:
            getattr(self, name)[rows] = getattr(other, name)

    def add_at(self, rows, other: "TokenSums") -> None:
        """Add ``other``'s statistics to the examples at ``rows`` (in place; repeated rows add up)."""
        for name in STATISTICS:
            np.add.at(getattr(self, name), rows, np.asarray(getattr(other, name), dtype=np.float64))


#: The statistics of :class:`TokenSums`, in field order.
STATISTICS = tuple(f.name for f in dataclasses.fields(TokenSums))
