"""The SFTMix Mixup loss as pure tensor functions (no Trainer).

For a confident example ``a`` and an unconfident example ``b`` paired in a batch,
SFTMix mixes the last-layer hidden states ``Z~ = lam * Z_a + (1 - lam) * Z_b`` at aligned
positions and scores them against the mixed one-hot targets, which equals
``lam * CE(head(Z~), y_a) + (1 - lam) * CE(head(Z~), y_b)`` (expand the soft-label cross-entropy to see it).

Conventions: HF-style *unshifted* labels (P, T) with ``-100`` on prompt and padding;
the hidden state at position t predicts the label at t + 1; padding is on the right.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..constants import IGNORE_INDEX
from ..recipe import ALIGNMENTS
from .ce import OutputHead, linear_cross_entropy

__all__ = ["AlignedPositions", "MixupOutput", "sample_lambdas",
           "align_pairs", "count_mixup_positions", "mix_hidden", "mixup_loss"]


def sample_lambdas(n: int, alpha: float, *, generator: torch.Generator | None = None,
                   device=None) -> torch.Tensor:
    """Draw ``n`` Mixup coefficients from Beta(alpha, alpha).

    Parameters
    ----------
    n : int, number of draws (one per pair).
    alpha : float > 0. alpha < 1 is U-shaped (mostly near 0 or 1); the paper uses 0.5.
    generator : torch.Generator, optional. Makes the draws reproducible.
    device : where the result lives (sampling itself happens on the CPU).

    Returns
    -------
    Tensor (n,), float32, in [0, 1].

    Notes
    -----
    ``torch.distributions.Beta`` takes no generator. With a generator we draw one 62-bit
    seed from it, then draw exactly what ``Beta`` would sample after
    ``torch.manual_seed(seed)`` (see ``_beta_seeded``): the result depends only on the
    generator's state, the generator advances (consecutive calls differ), and the global
    RNG is left untouched. Without a generator the global RNG is used directly.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    conc = torch.full((n,), float(alpha), dtype=torch.float32)
    if generator is None:
        lam = torch.distributions.Beta(conc, conc).sample()
    else:
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        lam = _beta_seeded(conc, seed)
    # Gamma underflow for tiny alpha can give 0/0; such draws sit at 0 or 1 anyway.
    return lam.nan_to_num(0.5).clamp_(0, 1).to(device)


def _beta_seeded(conc: torch.Tensor, seed: int) -> torch.Tensor:
    """The draws of ``Beta(conc, conc).sample()`` right after ``torch.manual_seed(seed)``.

    ``Beta`` samples the first coordinate of a Dirichlet with ``torch._sample_dirichlet``
    on the global generator; calling that op with a private generator seeded alike gives
    the same numbers without saving, reseeding and restoring the global RNG and without
    building a distribution object (~30x cheaper, which matters because the trainer draws
    one coefficient per pair). The public path is kept for torch builds without the op.
    """
    sample = getattr(torch, "_sample_dirichlet", None)
    if sample is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.distributions.Beta(conc, conc).sample()
    gen = torch.Generator().manual_seed(seed)
    return sample(torch.stack([conc, conc], -1), generator=gen).select(-1, 0)


class AlignedPositions(NamedTuple):
    """Aligned positions of P pairs, flattened to M entries (pair-major, position order).

    pair : (M,) long, pair index k.
    pos_a, pos_b : (M,) long, *predicting* positions t (label at t + 1 is the target).
    target_a, target_b : (M,) long, next-token targets (0 where that side has none).
    weight_a, weight_b : (M,) float32, 1.0 where that side's target is a response token.
    """

    pair: torch.Tensor
    pos_a: torch.Tensor
    pos_b: torch.Tensor
    target_a: torch.Tensor
    target_b: torch.Tensor
    weight_a: torch.Tensor
    weight_b: torch.Tensor


class MixupOutput(NamedTuple):
    """loss_sum : scalar, summed over aligned positions; num_positions : int64 scalar M."""

    loss_sum: torch.Tensor
    num_positions: torch.Tensor


def _check_labels(labels_a, labels_b, alignment):
    if alignment not in ALIGNMENTS or alignment not in _KERNELS:
        raise ValueError(f"unknown alignment {alignment!r}; options: {', '.join(ALIGNMENTS)}")
    for name, x in (("labels_a", labels_a), ("labels_b", labels_b)):
        if x.dim() != 2 or x.dtype != torch.long:
            raise ValueError(f"{name} must be a (P, T) LongTensor, got {x.dtype} {tuple(x.shape)}")
    if labels_a.shape[0] != labels_b.shape[0]:
        raise ValueError(f"labels_a and labels_b pair counts differ: {labels_a.shape[0]} vs "
                         f"{labels_b.shape[0]}")


def _next_targets(labels):
    """(P, T-1) targets of predicting positions 0..T-2, and their response mask."""
    tgt = labels[:, 1:]
    return tgt, tgt != IGNORE_INDEX


def _seq_lengths(labels):
    """(P,) sequence length: (last index whose label != -100) + 1, or 0 if none."""
    p, t = labels.shape
    if t == 0:
        return torch.zeros(p, dtype=torch.long, device=labels.device)
    idx = torch.arange(t, device=labels.device)
    return torch.where(labels != IGNORE_INDEX, idx, -1).amax(1) + 1


def _seq_keep(labels_a, labels_b):
    """(P, T'-1) mask of the sequence alignment's kept predicting positions, T' = min(T_a, T_b).

    Trailing unlabelled tokens count as padding (exact for right-padded examples whose
    response, EOS included, ends the sequence), so a length needs no attention mask.
    Predicting positions t <= min(L_a, L_b) - 2 are kept where either side has a target.
    """
    t = min(labels_a.shape[1], labels_b.shape[1])
    ra = _next_targets(labels_a[:, :t])[1]
    rb = _next_targets(labels_b[:, :t])[1]
    end = torch.minimum(_seq_lengths(labels_a), _seq_lengths(labels_b)) - 1
    idx = torch.arange(ra.shape[1], device=labels_a.device)
    return (idx < end[:, None]) & (ra | rb)


def align_pairs(labels_a: torch.Tensor, labels_b: torch.Tensor,
                alignment: str = "response") -> AlignedPositions:
    """Align the predicting positions of each pair (a_k, b_k).

    Parameters
    ----------
    labels_a : LongTensor (P, T_a); labels_b : LongTensor (P, T_b). Unshifted, -100 = ignore.
    alignment : ``"response"`` (default, the paper's min(N^c, N^u)): the k-th response
        token of a with the k-th of b, cut to the shorter response; both weights 1.
        ``"sequence"`` (ablation): the same absolute position t in both, cut to the shorter
        sequence (see ``_seq_keep`` for the length definition); a side's weight is 1 only
        where its own target is a response token; positions with neither are dropped.

    Returns
    -------
    AlignedPositions with M entries.
    """
    _check_labels(labels_a, labels_b, alignment)
    return _KERNELS[alignment][0](labels_a, labels_b)


def _align_response(labels_a, labels_b) -> AlignedPositions:
    ta, ra = _next_targets(labels_a)
    tb, rb = _next_targets(labels_b)
    # Rank of each response token within its row; keep ranks below the shorter count.
    m = torch.minimum(ra.sum(1), rb.sum(1))[:, None]
    keep_a = ra & (ra.cumsum(1) <= m)
    keep_b = rb & (rb.cumsum(1) <= m)
    # nonzero() is row-major, so both lists run (pair, rank) in the same order.
    pair, pos_a = keep_a.nonzero(as_tuple=True)
    pos_b = keep_b.nonzero(as_tuple=True)[1]
    target_a, target_b = ta[pair, pos_a], tb[pair, pos_b]
    ones = torch.ones(pair.shape[0], dtype=torch.float32, device=pair.device)
    return AlignedPositions(pair, pos_a, pos_b, target_a, target_b, ones, ones.clone())


def _align_sequence(labels_a, labels_b) -> AlignedPositions:
    pair, pos = _seq_keep(labels_a, labels_b).nonzero(as_tuple=True)
    ya, yb = labels_a[pair, pos + 1], labels_b[pair, pos + 1]
    has_a, has_b = ya != IGNORE_INDEX, yb != IGNORE_INDEX
    return AlignedPositions(pair, pos, pos.clone(), ya.where(has_a, 0), yb.where(has_b, 0),
                            has_a.float(), has_b.float())


def _count_response(labels_a, labels_b) -> torch.Tensor:
    ra, rb = _next_targets(labels_a)[1], _next_targets(labels_b)[1]
    return torch.minimum(ra.sum(1), rb.sum(1)).sum()


def _count_sequence(labels_a, labels_b) -> torch.Tensor:
    return _seq_keep(labels_a, labels_b).sum()


#: (align, count) kernels of each alignment registered in :data:`sftmix.recipe.ALIGNMENTS`.
_KERNELS = {"response": (_align_response, _count_response), "sequence": (_align_sequence, _count_sequence)}


def count_mixup_positions(labels_a: torch.Tensor, labels_b: torch.Tensor,
                          alignment: str = "response") -> torch.Tensor:
    """Number of aligned positions M (int64 scalar) without building index lists.

    Needs no hidden states and no host sync, so a trainer can count the positions of a
    whole gradient-accumulation step before running it.
    """
    _check_labels(labels_a, labels_b, alignment)
    return _KERNELS[alignment][1](labels_a, labels_b)


def mix_hidden(hidden_a: torch.Tensor, hidden_b: torch.Tensor, aligned: AlignedPositions,
               lam: torch.Tensor) -> torch.Tensor:
    """The mixed last hidden states ``Z~_m = lam_k * Z_a[k, pos_a,m] + (1 - lam_k) * Z_b[k, pos_b,m]``.

    Parameters
    ----------
    hidden_a : (P, T_a, D); hidden_b : (P, T_b, D).
    aligned : the pairs' aligned positions (:func:`align_pairs`), M entries.
    lam : (P,) float in [0, 1], one coefficient per pair.

    Returns
    -------
    (M, D) tensor in the hidden states' dtype (mixed in that dtype, as the model would have
    produced such a state).
    """
    mix_w = lam.detach()[aligned.pair].to(hidden_a.dtype)[:, None]
    return mix_w * hidden_a[aligned.pair, aligned.pos_a] + (1 - mix_w) * hidden_b[aligned.pair, aligned.pos_b]


def mixup_loss(hidden_a: torch.Tensor, labels_a: torch.Tensor, hidden_b: torch.Tensor,
               labels_b: torch.Tensor, lam: torch.Tensor, head: OutputHead, *,
               alignment: str = "response", chunk_size: int = 2048) -> MixupOutput:
    """Summed Mixup loss of P pairs on their aligned positions.

    ``loss_sum = sum_m lam_k * w_a,m * CE(head(Z~_m), y_a,m)
                       + (1 - lam_k) * w_b,m * CE(head(Z~_m), y_b,m)``,
    ``Z~_m = lam_k * Z_a[k, pos_a,m] + (1 - lam_k) * Z_b[k, pos_b,m]``, k = pair of m.

    Parameters
    ----------
    hidden_a : (P, T_a, D); labels_a : (P, T_a) long, unshifted, -100 = ignore.
    hidden_b : (P, T_b, D); labels_b : (P, T_b) long.
    lam : (P,) float in [0, 1], one coefficient per pair (no gradient).
    head : OutputHead applied to the mixed states.
    alignment : one of ``ALIGNMENTS``; see :func:`align_pairs`.
    chunk_size : tokens per chunk of the fused head + CE.

    Returns
    -------
    MixupOutput(loss_sum, num_positions). Not normalised: the caller divides by the
    position count of the whole accumulated step (:func:`count_mixup_positions`).

    Notes
    -----
    ``linear_cross_entropy`` computes ``weight * (l * CE_a + (1 - l) * CE_b)``. With
    ``c_a = lam * w_a`` and ``c_b = (1 - lam) * w_b`` we pass ``weight = c_a + c_b`` and
    ``l = c_a / (c_a + c_b)`` (1 where both are 0; the weight is then 0), which matches the
    formula term by term. Under ``"response"`` alignment w_a = w_b = 1, so weight = 1 and
    l = lam exactly; under ``"sequence"`` a position where only one side has a target
    keeps just that side's term with its own coefficient (lam or 1 - lam).
    """
    _check_labels(labels_a, labels_b, alignment)
    for name, h, lab in (("a", hidden_a, labels_a), ("b", hidden_b, labels_b)):
        if h.dim() != 3 or tuple(h.shape[:2]) != tuple(lab.shape):
            raise ValueError(f"hidden_{name} must be (P, T, D) matching labels_{name} "
                             f"{tuple(lab.shape)}, got {tuple(h.shape)}")
    d = head.weight.shape[-1]
    if hidden_a.shape[2] != d or hidden_b.shape[2] != d:
        raise ValueError(f"hidden sizes {hidden_a.shape[2]}, {hidden_b.shape[2]} do not match "
                         f"head.weight {tuple(head.weight.shape)}")
    if hidden_a.dtype != hidden_b.dtype:
        raise ValueError(f"hidden dtypes differ: {hidden_a.dtype} vs {hidden_b.dtype}")
    if lam.dim() != 1 or lam.shape[0] != labels_a.shape[0] or not lam.is_floating_point():
        raise ValueError(f"lam must be a float tensor of shape ({labels_a.shape[0]},), "
                         f"got {lam.dtype} {tuple(lam.shape)}")
    if lam.numel() and not bool(((lam >= 0) & (lam <= 1)).all()):
        raise ValueError("lam must lie in [0, 1]")

    al = align_pairs(labels_a, labels_b, alignment)
    lam = lam.detach()
    lam_m = lam[al.pair]
    z = mix_hidden(hidden_a, hidden_b, al, lam)
    # Fold the per-side weights into (weight, lam) of linear_cross_entropy; see Notes.
    lam_m = lam_m.to(torch.promote_types(lam.dtype, torch.float32))
    c_a = lam_m * al.weight_a.to(lam_m.dtype)
    c_b = (1 - lam_m) * al.weight_b.to(lam_m.dtype)
    weight = c_a + c_b
    lam_eff = torch.where(weight > 0, c_a / weight.clamp_min(torch.finfo(weight.dtype).tiny), 1.0)
    out = linear_cross_entropy(z, head, al.target_a, weights=weight, target_b=al.target_b,
                               lam=lam_eff, chunk_size=chunk_size)
    num = torch.tensor(al.pair.shape[0], dtype=torch.long, device=al.pair.device)
    return MixupOutput(out.loss_sum, num)
