"""Per-token statistics by name, from the scored tokens to the dynamics table and its plots.

Two registries are the one place a statistic is defined:

* :data:`STATISTICS`: what is summed over each example's tokens of one token set (the trained
  tokens, or the content tokens; see :mod:`sftmix.data.tokenize`), each from the tokens' NLL and
  ``argmax == gold``: ``nll_sum`` (gold-token NLL), ``prob_sum`` (gold-token probability
  ``exp(-nll)``) and ``correct_sum``. A :class:`TokenSums` holds them, and ``n_tokens``, for N
  examples; scoring (:func:`sftmix.dynamics.scoring.response_sums`), the online recorder
  (:class:`sftmix.train.callbacks.DynamicsRecorder`) and evaluation hand it on.
* :data:`CHECKPOINT_METRICS`: what one checkpoint's file holds per example, each computed from
  the per-token means of the statistics (``nll``, ``ppl``, ``prob``, ``gprob``, ``acc``); those
  with ``in_table`` become the ``<name>_<c>`` columns of the dynamics table
  (:mod:`sftmix.dynamics.table`), which the summaries (:data:`sftmix.recipe.SUMMARIES`) read, and
  ``label`` is how plots name them.

Code reads a statistic or metric by its name, never by a position, so adding one is an entry
here (and its test): scoring sums it, the files and the table carry it, the plots can draw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from ..recipe import Registry

__all__ = ["CHECKPOINT_METRICS", "STATISTICS", "CheckpointMetric", "Statistic", "TokenSums", "table_metrics",
           "token_sums"]


@dataclass(frozen=True)
class Statistic:
    """A per-token value summed per example: ``per_token(nll, correct)`` maps the (M,) float64 NLL and
    ``argmax == gold`` (0/1) of M tokens to their (M,) values."""

    name: str
    help: str
    per_token: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


STATISTICS: Registry[Statistic] = Registry("token statistic")
STATISTICS.register(Statistic("nll_sum", "gold-token negative log-likelihood", lambda nll, correct: nll))
STATISTICS.register(Statistic("prob_sum", "gold-token probability exp(-nll)", lambda nll, correct: torch.exp(-nll)))
STATISTICS.register(Statistic("correct_sum", "argmax == gold token", lambda nll, correct: correct))


@dataclass(frozen=True)
class CheckpointMetric:
    """A per-example metric at one checkpoint: ``compute(means)`` from ``{statistic name: sum / n_tokens}``
    ((N,) float64 arrays, NaN for an example without tokens). ``in_table``: a ``<name>_<c>`` column of
    the dynamics table; ``label``: how plots name it."""

    name: str
    label: str
    compute: Callable[[Mapping[str, np.ndarray]], np.ndarray]
    in_table: bool = True


CHECKPOINT_METRICS: Registry[CheckpointMetric] = Registry("per-checkpoint metric")
CHECKPOINT_METRICS.register(CheckpointMetric("nll", "mean token NLL", lambda m: m["nll_sum"], in_table=False))
CHECKPOINT_METRICS.register(CheckpointMetric("ppl", "perplexity", lambda m: np.exp(m["nll_sum"])))
CHECKPOINT_METRICS.register(CheckpointMetric("prob", "mean token probability", lambda m: m["prob_sum"]))
CHECKPOINT_METRICS.register(CheckpointMetric("gprob", "geometric-mean token probability",
                                             lambda m: np.exp(-m["nll_sum"])))
CHECKPOINT_METRICS.register(CheckpointMetric("acc", "token accuracy", lambda m: m["correct_sum"]))


def table_metrics() -> tuple[str, ...]:
    """The per-checkpoint metrics the dynamics table keeps, as ``<name>_<c>`` columns."""
    return tuple(n for n in CHECKPOINT_METRICS if CHECKPOINT_METRICS[n].in_table)


class TokenSums:
    """Per-example sums over one token set, float64 arrays of shape (N,): one per :data:`STATISTICS`
    entry and ``n_tokens``, read as attributes (``sums.nll_sum``).

    Made from the arrays by name, or positionally in :meth:`names` order.
    """

    def __init__(self, *values, **named):
        names = self.names()
        if len(values) > len(names):
            raise TypeError(f"TokenSums takes {len(names)} arrays ({', '.join(names)}), got {len(values)}")
        named = {**dict(zip(names, values)), **named}
        if set(named) != set(names):
            raise TypeError(f"TokenSums needs exactly {', '.join(names)}; got {', '.join(named)}")
        self._arrays = {n: np.asarray(named[n], dtype=np.float64) for n in names}

    @staticmethod
    def names() -> tuple[str, ...]:
        """The registered statistics, then ``n_tokens``."""
        return (*STATISTICS, "n_tokens")

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(f"TokenSums has no statistic {name!r}")

    @classmethod
    def full(cls, n: int, value: float = 0.0) -> "TokenSums":
        """N examples, every statistic ``value`` (0 for an accumulator, NaN for "not scored")."""
        return cls(**{name: np.full(n, value, dtype=np.float64) for name in cls.names()})

    @classmethod
    def from_stacked(cls, stacked: np.ndarray) -> "TokenSums":
        """From a (len(names()), N) array in :meth:`names` order (see :meth:`stacked`)."""
        stacked = np.asarray(stacked, dtype=np.float64)
        if stacked.ndim != 2 or stacked.shape[0] != len(cls.names()):
            raise ValueError(f"expected a ({len(cls.names())}, N) array, got shape {stacked.shape}")
        return cls(*stacked)

    def __len__(self) -> int:
        return len(self.n_tokens)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{name: (N,) array}``, in :meth:`names` order."""
        return dict(self._arrays)

    def means(self) -> dict[str, np.ndarray]:
        """Each statistic per token (``sum / n_tokens``; NaN where ``n_tokens == 0``)."""
        n = np.where(self.n_tokens > 0, self.n_tokens, np.nan)
        return {name: self._arrays[name] / n for name in STATISTICS}

    def stacked(self) -> np.ndarray:
        """A (len(names()), N) float64 array, for one collective reduction across processes."""
        return np.stack(list(self._arrays.values()))

    def take(self, rows) -> "TokenSums":
        """The examples at ``rows`` (an index array or boolean mask)."""
        return TokenSums(**{name: v[rows] for name, v in self._arrays.items()})

    def put(self, rows, other: "TokenSums") -> None:
        """Set the examples at ``rows`` to ``other``'s (in place)."""
        for name, v in self._arrays.items():
            v[rows] = getattr(other, name)

    def add_at(self, rows, other: "TokenSums") -> None:
        """Add ``other``'s statistics to the examples at ``rows`` (in place; repeated rows add up)."""
        for name, v in self._arrays.items():
            np.add.at(v, rows, np.asarray(getattr(other, name), dtype=np.float64))


def token_sums(token_nll: torch.Tensor, token_correct: torch.Tensor, rows: torch.Tensor, n_rows: int,
               n_tokens: np.ndarray) -> TokenSums:
    """Every statistic of :data:`STATISTICS` summed per row: token ``i`` (of M) belongs to row ``rows[i]``."""
    nll, correct = token_nll.detach().cpu().double(), token_correct.detach().cpu().double()
    sums = {}
    for name in STATISTICS:
        out = torch.zeros(n_rows, dtype=torch.float64)
        out.index_add_(0, rows, STATISTICS[name].per_token(nll, correct).double())
        sums[name] = out.numpy()
    return TokenSums(**sums, n_tokens=n_tokens)
