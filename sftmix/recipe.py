"""The recipe's variation points, each a registry of named choices: the one place they are defined.

What a researcher changes in SFTMix is which examples are mixed (:data:`PAIRINGS`), how
the NTP and Mixup losses are combined (:data:`LOSS_VARIANTS`), how a pair's positions are
aligned (:data:`ALIGNMENTS`), which per-example summary of the training dynamics ranks
the data into a confident and an unconfident half (:data:`SUMMARIES`, with what the plots need
to draw each: its axis label, its log view, its colour scale) and how the representation space
is drawn in 2-D (:data:`PROJECTIONS`). Configuration
validation and help text, the trainer, the sampler, the dynamics table, the split and the
ablation's axes all read these registries, so a new choice is one entry here plus its
tests. ``paper=True`` marks the choices the paper (arXiv:2410.05248) describes or ablates:
they make up the default ablation sweep; the others are sweepable on request.

The alignment maths stays with the rest of the Mixup maths in :mod:`sftmix.loss.mixup`,
and the projections with theirs in :mod:`sftmix.analysis.projection`; both key their functions
by the names registered here (tests check that they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

import numpy as np
import torch

from .constants import IGNORE_INDEX
from .errors import ConfigError

__all__ = ["ALIGNMENTS", "LOSS_VARIANTS", "PAIRINGS", "PROJECTIONS", "SUMMARIES", "Alignment", "LossVariant",
           "Pairing", "Projection", "Registry", "SPLIT_METRICS", "Summary"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one variation point, in registration order (the first is the default)."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        name = entry.name
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        """The entry called ``name``; ``ValueError`` naming the valid choices otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"{self.what}={name!r} is not valid; choose one of {', '.join(self._entries)}") from None

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, *, paper: bool | None = None) -> tuple[str, ...]:
        """Every name, or only those with ``entry.paper == paper``."""
        return tuple(n for n, e in self._entries.items() if paper is None or e.paper == paper)

    def help(self) -> str:
        """One line per entry, ``'name': help``, for a config field's help text."""
        return "; ".join(f"'{n}': {e.help}" for n, e in self._entries.items())


# ------------------------------------------------------------------------------ pairing
Rows = tuple[torch.Tensor, torch.Tensor]


def _halves(batch_size: int, labels: torch.Tensor | None) -> Rows:
    half = batch_size // 2
    return torch.arange(half), torch.arange(half, 2 * half)


def _quarters(start_half: int) -> Callable[[int, torch.Tensor | None], Rows]:
    def rows(batch_size: int, labels: torch.Tensor | None) -> Rows:
        half = batch_size // 2
        quarter, start = half // 2, start_half * half
        return torch.arange(start, start + quarter), torch.arange(start + quarter, start + 2 * quarter)
    return rows


def _length_matched(batch_size: int, labels: torch.Tensor | None) -> Rows:
    # Sorting both halves by response length and pairing them in order is the one-to-one
    # matching with the smallest total length gap; the stable sort breaks ties by row.
    if labels is None:
        raise ValueError("pairing='length_matched' pairs by response length: pass the batch's labels")
    half = batch_size // 2
    lengths = (labels[:, 1:] != IGNORE_INDEX).sum(1).cpu()
    a = torch.sort(lengths[:half], stable=True).indices
    b = torch.sort(lengths[half:2 * half], stable=True).indices + half
    return a, b


@dataclass(frozen=True)
class Pairing:
    """How the rows of a training batch are paired for Mixup.

    ``pooled``: the sampler draws both halves of a batch from all examples (no split
    halves). ``rows(batch_size, labels)``: the (a, b) row indices of the pairs of a batch
    laid out as [first half, second half]; ``labels`` (B, T) or None for a pairing that does
    not look at the examples. ``batch_multiple``:
    ``per_device_train_batch_size`` must be a multiple of it.
    """

    name: str
    help: str
    rows: Callable[[int, torch.Tensor | None], Rows]
    pooled: bool = False
    batch_multiple: int = 2
    paper: bool = True


PAIRINGS: Registry[Pairing] = Registry("pairing")
PAIRINGS.register(Pairing("confident_unconfident", "each confident example with an unconfident one (the paper)",
                          _halves))
PAIRINGS.register(Pairing("random", "random pairs of any two examples (ablation)", _halves, pooled=True))
PAIRINGS.register(Pairing("confident_confident", "confident examples with each other (ablation; batch size a "
                          "multiple of 4)", _quarters(0), batch_multiple=4))
PAIRINGS.register(Pairing("unconfident_unconfident", "unconfident examples with each other (ablation; batch "
                          "size a multiple of 4)", _quarters(1), batch_multiple=4))
PAIRINGS.register(Pairing("length_matched", "confident with unconfident, the two halves of each batch sorted by "
                          "response length and paired in order, so a pair loses few tokens to the shorter "
                          "response (not in the paper)", _length_matched, paper=False))


# ------------------------------------------------------------------------ loss variant
@dataclass(frozen=True)
class LossVariant:
    """How the NTP and Mixup losses are combined: ``combine(ntp, mixup, mixup_weight)``."""

    name: str
    help: str
    combine: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    paper: bool = True


LOSS_VARIANTS: Registry[LossVariant] = Registry("loss_variant")
LOSS_VARIANTS.register(LossVariant("ntp_plus_mixup", "NTP + mu*Mixup (the paper's recipe)",
                                   lambda ntp, mix, mu: ntp + mu * mix))
LOSS_VARIANTS.register(LossVariant("equal", "0.5*NTP + 0.5*Mixup", lambda ntp, mix, mu: 0.5 * ntp + 0.5 * mix))
LOSS_VARIANTS.register(LossVariant("mixup_only", "Mixup alone", lambda ntp, mix, mu: mix))


# --------------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class Alignment:
    """How the positions of a Mixup pair are aligned (kernels in :mod:`sftmix.loss.mixup`)."""

    name: str
    help: str
    paper: bool = True


ALIGNMENTS: Registry[Alignment] = Registry("mixup_alignment")
ALIGNMENTS.register(Alignment("response", "response tokens aligned from their first token, cut to the shorter "
                              "response (default)"))
ALIGNMENTS.register(Alignment("sequence", "absolute positions (ablation)"))


# ------------------------------------------------------------ dynamics summaries
def _last_finite(x: np.ndarray) -> np.ndarray:
    """Per row of (N, C) ``x``: its last finite value (NaN for a row without one)."""
    finite = np.isfinite(x)
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan)
    last = x.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(axis=1), x[np.arange(x.shape[0]), last], np.nan)


@dataclass(frozen=True)
class Summary:
    """A per-example summary over checkpoints, a column of the dynamics table.

    ``compute(metrics)`` maps ``{"ppl", "gprob", "acc", ...}`` (N, C) float arrays, one per
    per-checkpoint metric (NaN where an example has no value at a checkpoint; NaN entries are
    ignored), to an (N,) array.
    ``direction``: +1 when a higher value means more confident, -1 when lower does, None
    when the summary does not rank confidence (it cannot split the data).
    What the plots read: ``label`` (the axis label); ``perplexity`` (the summary is minus
    this perplexity, heavy-tailed: ``log=True`` draws it as log₁₀ of the perplexity, see
    :attr:`log_label`; None otherwise); ``colour_scale`` (a projection coloured by it:
    ``"quantile"`` deciles or ``"linear"``); ``colour_range`` (fixed limits of a linear colour
    scale, e.g. (0, 1) for a share; None: the 2nd-98th percentile of the values).
    """

    name: str
    help: str
    compute: Callable[[dict[str, np.ndarray]], np.ndarray]
    direction: int | None = 1
    paper: bool = True
    label: str = ""
    perplexity: str | None = None
    colour_scale: str = "linear"
    colour_range: tuple[float, float] | None = None

    @property
    def log_label(self) -> str | None:
        """The axis label of the log view (``log₁₀ <perplexity> (= log₁₀ of −<name>)``), or None."""
        if self.perplexity is None:
            return None
        return f"log\u2081\u2080 {self.perplexity} (= log\u2081\u2080 of \u2212{self.name})"


SUMMARIES: Registry[Summary] = Registry("summary")
SUMMARIES.register(Summary("confidence", "-mean over checkpoints of perplexity (the paper's)",
                           lambda m: -np.nanmean(m["ppl"], axis=1), label="confidence (\u2212mean perplexity)",
                           perplexity="mean perplexity", colour_scale="quantile"))
SUMMARIES.register(Summary("confidence_prob", "mean over checkpoints of the geometric-mean token probability",
                           lambda m: np.nanmean(m["gprob"], axis=1),
                           label="confidence (mean geometric-mean token prob.)", colour_scale="quantile"))
SUMMARIES.register(Summary("variability", "std over checkpoints of perplexity (ddof=0, as Dataset Cartography)",
                           lambda m: np.nanstd(m["ppl"], axis=1), direction=None,
                           label="variability (std of perplexity)"))
SUMMARIES.register(Summary("variability_prob", "std over checkpoints of the geometric-mean probability",
                           lambda m: np.nanstd(m["gprob"], axis=1), direction=None,
                           label="variability (std of geometric-mean token prob.)"))
SUMMARIES.register(Summary("correctness", "mean over checkpoints of token accuracy",
                           lambda m: np.nanmean(m["acc"], axis=1), label="correctness (mean token accuracy)",
                           colour_range=(0.0, 1.0)))
SUMMARIES.register(Summary("confidence_last", "-perplexity at the last checkpoint that scored the example "
                           "(not in the paper)", lambda m: -_last_finite(m["ppl"]), paper=False,
                           label="confidence at the last checkpoint (\u2212perplexity)",
                           perplexity="last-checkpoint perplexity"))


#: The summaries a split may rank by: those with a direction.
SPLIT_METRICS = tuple(n for n in SUMMARIES if SUMMARIES[n].direction is not None)


# --------------------------------------------------------------------------- projection
@dataclass(frozen=True)
class Projection:
    """A 2-D view of the representation space (functions in :mod:`sftmix.analysis.projection`).

    ``label``: how figures name it (``"UMAP 1"``, ``"UMAP 2"`` on the axes).
    """

    name: str
    help: str
    label: str
    paper: bool = True


PROJECTIONS: Registry[Projection] = Registry("projection")
PROJECTIONS.register(Projection("umap", "UMAP after a 50-dimension PCA (default; ~1 min to compile on first use)",
                                "UMAP", paper=False))
PROJECTIONS.register(Projection("pca", "the first two principal components (fast, linear)", "PCA", paper=False))
PROJECTIONS.register(Projection("tsne", "t-SNE after a 50-dimension PCA (the paper's Fig. 1)", "t-SNE"))
