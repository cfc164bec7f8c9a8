"""Memory-bounded linear cross-entropy: output head + softmax + CE, fused, in token chunks.

The full-vocabulary logits of a batch (N tokens x V vocab, float32) are the largest
tensor in LM training: 16k tokens x 128k vocab is 8 GiB, more than the model's
activations. SFTMix needs them twice per step (NTP and the Mixup pass), so we never
materialise them for all tokens at once. :func:`linear_cross_entropy` walks over the
tokens in chunks and, when gradients are needed, computes them inside the forward
pass (the softmax gradient has a closed form), so only one chunk's logits are alive at
any time. The FLOPs equal an ordinary forward + backward; the extra memory is the
gradient buffers that autograd would create anyway plus one chunk's logits.

The chunk is bounded twice: by ``chunk_size`` tokens and by ``max_chunk_bytes`` of logits
(:func:`effective_chunk_size`), so a large vocabulary gets short chunks: at Gemma 3's
V = 262,144 a 4,096-token chunk would hold 4 GiB of float32 logits; the 128 MiB default
bound keeps 128 tokens per chunk, where a single-thread matmul is already near its peak rate.

The weight gradient is a (V, D) buffer per call, held from the forward to the backward. A
second call on the same weight (SFTMix's Mixup pass after the NTP pass) whose tokens are fewer
than D keeps its (tokens, V) logits gradient instead, and in backward adds ``dz^T h`` into the
first call's buffer when the autograd engine will still run that call's backward (else it
forms its own): one (V, D) head gradient per step instead of two (671 MB at Gemma 3's head).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from ..constants import IGNORE_INDEX

__all__ = ["CHUNK_LOGITS_BYTES", "OutputHead", "CEOutput", "effective_chunk_size", "linear_cross_entropy",
           "response_cross_entropy"]

#: Default bound on one chunk's logits (bytes, in the softmax dtype): 128 MiB.
CHUNK_LOGITS_BYTES = 128 * 2**20
#: Chunks never shrink below this many tokens for the byte bound (matmuls of fewer rows run slowly).
MIN_CHUNK_TOKENS = 32


@dataclass
class OutputHead:
    """What a model applies between its last hidden state and its logits.

    ``z = hidden @ weight.T (+ bias)``; ``z = z * scale``; if ``softcap``:
    ``z = softcap * tanh(z / softcap)``.

    Attributes
    ----------
    weight : Tensor, shape (V, D)
        The lm_head weight (may be tied to the input embeddings).
    bias : Tensor, shape (V,), optional
    softcap : float, optional
        Gemma-2 style final-logit soft-capping.
    scale : float
        Multiplies the logits (Cohere ``logit_scale``; Granite ``1 / logits_scaling``).
    """

    weight: torch.Tensor
    bias: torch.Tensor | None = None
    softcap: float | None = None
    scale: float = 1.0

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Reference full logits, shape (..., V), float32 (float64 for float64 input).

        Materialises every logit; meant for tests and small inputs.
        """
        return _chunk_logits(hidden, self)[0]


class CEOutput(NamedTuple):
    """Result of :func:`linear_cross_entropy`.

    loss_sum : Tensor, scalar, differentiable.
    token_nll : Tensor (N,), detached, CE against the first target; None unless requested.
    token_correct : Tensor (N,) bool, the first target's logit is the largest (argmax ==
        target; a tie for the largest counts as correct); None unless requested.
    token_max_prob : Tensor (N,), detached, the largest softmax probability (the model's
        confidence in its own prediction, for calibration); None unless requested.
    """

    loss_sum: torch.Tensor
    token_nll: torch.Tensor | None
    token_correct: torch.Tensor | None
    token_max_prob: torch.Tensor | None = None


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Softmax/CE in at least float32; float64 stays float64 so tests can be tight.
    return torch.promote_types(dtype, torch.float32)


def effective_chunk_size(chunk_size: int, vocab_size: int, dtype: torch.dtype = torch.float32,
                         max_chunk_bytes: int | None = CHUNK_LOGITS_BYTES) -> int:
    """Tokens per chunk: at most ``chunk_size``, and at most ``max_chunk_bytes`` of (chunk, V) logits in
    the softmax dtype of ``dtype`` (never below ``MIN_CHUNK_TOKENS`` for the byte bound; None: no bound).

    E.g. 4096 requested, float32: V = 49,152 -> 682 tokens (128 MiB); V = 262,144 -> 128.
    """
    if max_chunk_bytes is None:
        return chunk_size
    per_token = vocab_size * torch.finfo(_compute_dtype(dtype)).bits // 8
    return min(chunk_size, max(MIN_CHUNK_TOKENS, max_chunk_bytes // max(per_token, 1)))


def _chunk_logits(h: torch.Tensor, head: OutputHead):
    """Logits of ``h`` upcast for the softmax, and tanh(z/c) (for the softcap derivative)."""
    # Matmul in the inputs' dtype (as the model's own lm_head would), then upcast.
    z = torch.nn.functional.linear(h, head.weight, head.bias)
    z = z.to(_compute_dtype(z.dtype))
    if head.scale != 1.0:
        z = z * head.scale
    t = None
    if head.softcap is not None:
        t = torch.tanh(z / head.softcap)
        z = t * head.softcap
    return z, t


def _add_weight_grad(g_w, dz, h, dtype, alpha=1.0):
    """``g_w += alpha * dz^T h`` (a new ``dtype`` buffer when ``g_w`` is None), without a (V, D) temporary
    when the dtypes agree; the matmul runs in ``dz``'s dtype, as autograd would run it."""
    if g_w is None:
        g_w = (dz.t() @ h).to(dtype)
        return g_w.mul_(alpha) if alpha != 1.0 else g_w
    if g_w.dtype == dz.dtype:
        return g_w.addmm_(dz.t(), h, alpha=alpha)
    return g_w.add_((dz.t() @ h).to(g_w.dtype), alpha=alpha)


def _run(hidden, head, target, weights, target_b, lam, chunk_size, stats, grads, keep=None):
    """The chunk loop. ``grads`` = (hidden, weight, bias) flags: which gradients to build. With a
    ``keep`` list the weight gradient is not formed: each chunk's (dz, h) is appended to it instead."""
    n = hidden.shape[0]
    cdt = _compute_dtype(hidden.dtype)
    w = head.weight
    # Weight in the hidden dtype for the backward matmuls (differs only under autocast).
    w_mm = w if w.dtype == hidden.dtype else w.to(hidden.dtype)
    loss = torch.zeros((), dtype=cdt, device=hidden.device)
    nll_all = torch.empty(n, dtype=cdt, device=hidden.device) if stats else None
    correct_all = torch.empty(n, dtype=torch.bool, device=hidden.device) if stats else None
    pmax_all = torch.empty(n, dtype=cdt, device=hidden.device) if stats else None
    g_h = torch.empty_like(hidden) if grads[0] else None
    # Accumulate the weight/bias gradients over chunks in float32 (or wider). The weight's is
    # created by the first chunk's matmul (no zero-filled (V, D) pass).
    g_w, gw_dtype = None, _compute_dtype(w.dtype)
    g_b = (torch.zeros(head.bias.shape, dtype=_compute_dtype(head.bias.dtype), device=w.device)
           if grads[2] else None)
    # Per-token weights of exactly 1 (NTP; response-aligned Mixup) need no scaling pass.
    unit = bool((weights == 1).all()) if any(grads) else True
    for s in range(0, n, chunk_size):
        e = min(s + chunk_size, n)
        h = hidden[s:e]
        z, t = _chunk_logits(h, head)  # a fresh (chunk, V) tensor: updated in place below
        a = target[s:e, None]
        z_a = z.gather(1, a).squeeze(1)
        z_b = z.gather(1, target_b[s:e, None]).squeeze(1) if target_b is not None else None
        m = z.amax(dim=-1, keepdim=True)
        if stats:
            # Predicted = the target's logit is the row maximum (a tie counts as predicted);
            # reuses the max, where argmax would be another, several times slower, pass.
            correct_all[s:e] = z_a >= m.squeeze(1)
        # One exp per logit serves the loss and its gradient: z becomes exp(z - max) in place.
        p = z.sub_(m).exp_()
        total = p.sum(dim=-1, keepdim=True)
        lse = (total.log() + m).squeeze(1)
        nll = lse - z_a
        wt = weights[s:e]
        if target_b is not None:
            lm = lam[s:e]
            loss = loss + (wt * (lm * nll + (1 - lm) * (lse - z_b))).sum()
        else:
            loss = loss + (wt * nll).sum()
        if stats:
            nll_all[s:e] = nll
            pmax_all[s:e] = total.squeeze(1).reciprocal()  # exp(max - lse): p holds exp(z - max)
        if not any(grads):
            continue
        # dL/dz = w * (softmax(z) - soft_target); scatter_add handles a == b correctly.
        dz = p.div_(total)
        if target_b is not None:
            dz.scatter_add_(1, a, -lm[:, None])
            dz.scatter_add_(1, target_b[s:e, None], (lm - 1)[:, None])
        else:
            dz.scatter_add_(1, a, torch.full_like(lse, -1.0)[:, None])
        if not unit:
            dz.mul_(wt[:, None])
        if t is not None:  # d/dz [c * tanh(z / c)] = 1 - tanh^2
            dz.mul_(1 - t * t)
        if head.scale != 1.0:
            dz.mul_(head.scale)
        if g_b is not None:
            g_b += dz.sum(0)
        dzl = dz.to(hidden.dtype)  # back to the matmul dtype, as autograd would run it
        if g_h is not None:
            g_h[s:e] = dzl @ w_mm
        if grads[1] and keep is not None:
            keep.append((dzl, h))
        elif grads[1]:
            g_w = _add_weight_grad(g_w, dzl, h, gw_dtype)
    return loss, nll_all, correct_all, pmax_all, g_h, g_w, g_b


#: id(weight) -> the backward node of the latest call on that weight holding a (V, D) gradient buffer.
_PENDING: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _pending_node(weight: torch.Tensor):
    node = _PENDING.get(id(weight))
    if node is None or node.weight_ref() is not weight or node.grads is None or node.grads[1] is None:
        return None
    return node


class _LinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, target, weights, target_b, lam, head, chunk_size, stats):
        grads = tuple(ctx.needs_input_grad[:3])
        # Fewer tokens than D: (tokens, V) logits gradients are smaller than a (V, D) buffer; keep them
        # and add dz^T h into an earlier call's buffer in backward (see the module docstring).
        gw_dtype = _compute_dtype(weight.dtype)
        smaller = hidden.shape[0] * hidden.element_size() < weight.shape[1] * torch.finfo(gw_dtype).bits // 8
        target_node = _pending_node(weight) if grads[1] and smaller else None
        keep = [] if target_node is not None else None
        loss, nll, correct, pmax, g_h, g_w, g_b = _run(
            hidden, head, target, weights, target_b, lam, chunk_size, stats, grads, keep=keep)
        # Intermediates kept on ctx (not inputs/outputs, so no save_for_backward needed).
        ctx.grads = (g_h, g_w, g_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.kept, ctx.deferred, ctx.gw_dtype = keep, [], gw_dtype
        ctx.defer_to = weakref.ref(target_node) if target_node is not None else None
        ctx.weight_ref = weakref.ref(weight)
        if g_w is not None:
            _PENDING[id(weight)] = ctx
        if stats:
            ctx.mark_non_differentiable(nll, correct, pmax)
        return loss, nll, correct, pmax

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss, _g_nll, _g_correct, _g_pmax):
        g_h, g_w, g_b = ctx.grads
        ctx.grads = None  # marks this node as run for later calls' backward
        if ctx.kept is not None:
            target = ctx.defer_to()
            if target is not None and target.grads is not None and torch._C._will_engine_execute_node(target):
                target.deferred.append((ctx.kept, grad_loss))  # that node returns the sum
            else:  # the earlier call's backward has run or will not run: form this call's own gradient
                for dz, h in ctx.kept:
                    g_w = _add_weight_grad(g_w, dz, h, ctx.gw_dtype)
                g_w.mul_(grad_loss)
            ctx.kept = None
        elif g_w is not None:
            g_w.mul_(grad_loss)
        for kept, scale in ctx.deferred:
            for dz, h in kept:
                g_w = _add_weight_grad(g_w, dz, h, ctx.gw_dtype, alpha=float(scale))
        ctx.deferred = []
        # The buffers are ours and used once: scale them in place (no (V, D) temporary).
        if g_h is not None:
            g_h.mul_(grad_loss)
        if g_b is not None:
            g_b.mul_(grad_loss)
        out = [None if g is None else g.to(dt) for g, dt in zip((g_h, g_w, g_b), ctx.dtypes)]
        return (*out, None, None, None, None, None, None, None)


def linear_cross_entropy(hidden, head: OutputHead, target, *, weights=None, target_b=None,
                         lam=None, chunk_size: int = 2048, max_chunk_bytes: int | None = CHUNK_LOGITS_BYTES,
                         return_stats: bool = False) -> CEOutput:
    """Weighted (optionally two-label) cross-entropy of ``head(hidden)``, chunked over tokens.

    ``loss_sum = sum_i weights_i * [lam_i * CE(z_i, target_i) + (1 - lam_i) * CE(z_i, target_b_i)]``
    (``weights_i * CE(z_i, target_i)`` without ``target_b``), where ``z = head.logits(hidden)``.

    Parameters
    ----------
    hidden : Tensor (N, D), any float dtype.
    head : OutputHead with weight (V, D).
    target : LongTensor (N,), values in [0, V). No ignore index: select tokens first.
    weights : Tensor (N,), optional. Per-token weights (constants, no gradient). Default ones.
    target_b, lam : LongTensor (N,) and Tensor (N,) in [0, 1], optional, together.
        Soft target ``lam * onehot(target) + (1 - lam) * onehot(target_b)``; lam gets no gradient.
    chunk_size : int. Most tokens per chunk; peak extra memory is one chunk's (chunk, V) logits.
    max_chunk_bytes : int or None. Most bytes of one chunk's logits (softmax dtype); shortens the chunk
        for large vocabularies (:func:`effective_chunk_size`). None: ``chunk_size`` alone.
    return_stats : bool. Also return detached ``token_nll``, ``token_correct`` and ``token_max_prob`` (N,).

    Returns
    -------
    CEOutput(loss_sum, token_nll, token_correct, token_max_prob). ``loss_sum`` is a float32 scalar
    (float64 for float64 inputs), differentiable w.r.t. hidden, head.weight, head.bias.
    """
    w, bias = head.weight, head.bias
    if hidden.dim() != 2 or w.dim() != 2 or hidden.shape[1] != w.shape[1]:
        raise ValueError(f"hidden must be (N, D) and head.weight (V, D); got {tuple(hidden.shape)} "
                         f"and {tuple(w.shape)}")
    n, v = hidden.shape[0], w.shape[0]
    if bias is not None and tuple(bias.shape) != (v,):
        raise ValueError(f"head.bias must be ({v},), got {tuple(bias.shape)}")
    if head.softcap is not None and not head.softcap > 0:
        raise ValueError(f"softcap must be positive, got {head.softcap}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if max_chunk_bytes is not None and (not isinstance(max_chunk_bytes, int) or max_chunk_bytes < 1):
        raise ValueError(f"max_chunk_bytes must be a positive int or None, got {max_chunk_bytes!r}")
    if (target_b is None) != (lam is None):
        raise ValueError("target_b and lam must be given together")
    for name, x in (("target", target), ("target_b", target_b)):
        if x is None:
            continue
        if x.dtype != torch.long or tuple(x.shape) != (n,):
            raise ValueError(f"{name} must be a LongTensor of shape ({n},), got {x.dtype} {tuple(x.shape)}")
        if n and (int(x.min()) < 0 or int(x.max()) >= v):
            raise ValueError(f"{name} values must lie in [0, {v})")
    cdt = _compute_dtype(hidden.dtype)
    chunk_size = effective_chunk_size(chunk_size, v, hidden.dtype, max_chunk_bytes)
    for name, x in (("weights", weights), ("lam", lam)):
        if x is not None and tuple(x.shape) != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(x.shape)}")
    weights = (torch.ones(n, dtype=cdt, device=hidden.device) if weights is None
               else weights.detach().to(cdt))
    if lam is not None:
        lam = lam.detach().to(cdt)

    if n == 0:
        # Zero loss still connected to every differentiable input, so backward() works.
        loss = hidden.sum().to(cdt) * 0 + w[:0].sum()
        if bias is not None:
            loss = loss + bias[:0].sum()
        stats = ((torch.empty(0, dtype=cdt, device=hidden.device),
                  torch.empty(0, dtype=torch.bool, device=hidden.device),
                  torch.empty(0, dtype=cdt, device=hidden.device))
                 if return_stats else (None, None, None))
        return CEOutput(loss, *stats)

    tensors = [hidden, w] + ([] if bias is None else [bias])
    if torch.is_grad_enabled() and any(x.requires_grad for x in tensors):
        loss, nll, correct, pmax = _LinearCE.apply(hidden, w, bias, target, weights, target_b, lam,
                                                   head, chunk_size, return_stats)
    else:  # scoring / inference_mode: no gradient work at all
        loss, nll, correct, pmax, *_ = _run(hidden, head, target, weights, target_b, lam,
                                            chunk_size, return_stats, (False, False, False))
    return CEOutput(loss, nll, correct, pmax)


def response_cross_entropy(hidden, labels, head: OutputHead, *, chunk_size: int = 4096,
                           return_stats: bool = False) -> tuple[CEOutput, torch.Tensor]:
    """The response NLL of a batch, shared by training and scoring: position t predicts token t+1,
    and only labelled targets (``labels != IGNORE_INDEX``) reach the output head.

    ``hidden``: (B, T, H) last hidden states; ``labels``: (B, T). Returns the
    :func:`linear_cross_entropy` output over the labelled targets, in row-major order, and their
    (B, T-1) mask (``mask.sum()`` targets).
    """
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    ce = linear_cross_entropy(hidden[:, :-1][mask], head, targets[mask], chunk_size=chunk_size,
                              return_stats=return_stats)
    return ce, mask

