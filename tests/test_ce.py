"""Tests for sftmix.loss.ce: the chunked fused head + cross-entropy against a naive reference."""
import math

import pytest
import torch
import torch.nn.functional as F

import sftmix.loss.ce as ce
from sftmix.loss.ce import CEOutput, OutputHead, linear_cross_entropy

N, D, V = 7, 5, 11


def _make(dtype=torch.float64, bias=False, softcap=None, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, D, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    w = torch.randn(V, D, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    b = torch.randn(V, generator=g, dtype=torch.float64).to(dtype).requires_grad_() if bias else None
    y = torch.randint(0, V, (N,), generator=g)
    yb = torch.randint(0, V, (N,), generator=g)
    yb[0] = y[0]  # one token whose two targets coincide
    lam = torch.rand(N, generator=g, dtype=torch.float64)
    lam[1], lam[2] = 0.0, 1.0
    wt = torch.rand(N, generator=g, dtype=torch.float64) * 2
    wt[3] = 0.0
    return h, OutputHead(w, b, softcap=softcap, scale=scale), y, yb, lam, wt


def _naive(h, head, y, weights=None, target_b=None, lam=None):
    z = head.logits(h)
    ce_a = F.cross_entropy(z, y, reduction="none")
    if target_b is not None:
        ce_a = lam * ce_a + (1 - lam) * F.cross_entropy(z, target_b, reduction="none")
    if weights is not None:
        ce_a = weights * ce_a
    return ce_a.sum()


def _params(h, head):
    return [h, head.weight] + ([] if head.bias is None else [head.bias])


def _check(h, head, y, tol=1e-12, chunk_size=3, max_chunk_bytes=ce.CHUNK_LOGITS_BYTES, **kw):
    out = linear_cross_entropy(h, head, y, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes, **kw)
    ref = _naive(h, head, y, **kw)
    ps = _params(h, head)
    got_g = torch.autograd.grad(out.loss_sum, ps)
    ref_g = torch.autograd.grad(ref, ps)
    torch.testing.assert_close(out.loss_sum, ref, rtol=tol, atol=tol)
    for a, b in zip(got_g, ref_g):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    return out


@pytest.mark.parametrize("case", ["plain", "soft", "weights", "soft_weights", "softcap_scale",
                                  "bias", "everything"])
def test_matches_naive_value_and_grads(case):
    bias = case in ("bias", "everything")
    cap, scale = ((2.0, 0.7) if case in ("softcap_scale", "everything") else (None, 1.0))
    h, head, y, yb, lam, wt = _make(bias=bias, softcap=cap, scale=scale)
    kw = {}
    if case in ("soft", "soft_weights", "everything"):
        kw.update(target_b=yb, lam=lam)
    if case in ("weights", "soft_weights", "everything"):
        kw.update(weights=wt)
    out = _check(h, head, y, **kw)
    assert isinstance(out, CEOutput) and out.token_nll is None and out.token_correct is None
    assert out.loss_sum.dim() == 0


def test_head_logits_order_of_operations():
    h, head, *_ = _make(bias=True, softcap=1.5, scale=0.5)
    z = (h @ head.weight.T + head.bias) * 0.5
    torch.testing.assert_close(head.logits(h), 1.5 * torch.tanh(z / 1.5))
    assert OutputHead(head.weight.float()).logits(h.float()).dtype == torch.float32


@pytest.mark.parametrize("chunk_size", [1, 3, N, N + 5])
def test_chunk_sizes_agree(chunk_size):
    h, head, y, yb, lam, wt = _make(bias=True, softcap=3.0)
    out = _check(h, head, y, chunk_size=chunk_size, target_b=yb, lam=lam, weights=wt)
    base = linear_cross_entropy(h, head, y, chunk_size=2, target_b=yb, lam=lam, weights=wt)
    torch.testing.assert_close(out.loss_sum, base.loss_sum, rtol=1e-12, atol=1e-12)


def test_stats_match_reference_and_are_detached():
    h, head, y, yb, lam, _ = _make(bias=True)
    out = linear_cross_entropy(h, head, y, target_b=yb, lam=lam, chunk_size=2, return_stats=True)
    z = head.logits(h)
    torch.testing.assert_close(out.token_nll, F.cross_entropy(z, y, reduction="none").detach())
    assert torch.equal(out.token_correct, z.argmax(-1) == y)
    assert out.token_correct.dtype == torch.bool
    assert not out.token_nll.requires_grad and out.loss_sum.requires_grad


def test_hand_computed_two_tokens_three_classes():
    # W = I, so the logits are the hidden states themselves.
    w = torch.eye(3, requires_grad=True)
    h = torch.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 2])
    out = linear_cross_entropy(h, OutputHead(w), y, return_stats=True)
    # token 0: log(e^2 + e^1 + e^0) - 2 = log(1 + e^-1 + e^-2); argmax 0 == 0
    # token 1: log(2e + e^3) - 1 = 2 + log(1 + 2e^-2);           argmax 1 != 2
    nll = torch.tensor([0.40760596, 2.23954480])
    torch.testing.assert_close(out.token_nll, nll)
    assert out.token_correct.tolist() == [True, False]
    torch.testing.assert_close(out.loss_sum, torch.tensor(2.64715076))
    out.loss_sum.backward()
    # d/dz = softmax - onehot, and W = I makes grad_hidden exactly that.
    p0 = torch.tensor([math.e ** 2, math.e, 1.0]) / (math.e ** 2 + math.e + 1)
    torch.testing.assert_close(h.grad[0], p0 - torch.tensor([1.0, 0.0, 0.0]))


def test_bf16_close_to_fp32_reference():
    h, head, y, yb, lam, wt = _make(dtype=torch.bfloat16, bias=True, softcap=5.0)
    out = linear_cross_entropy(h, head, y, target_b=yb, lam=lam, weights=wt, chunk_size=3)
    assert out.loss_sum.dtype == torch.float32
    g = torch.autograd.grad(out.loss_sum, [h, head.weight, head.bias])
    assert [t.dtype for t in g] == [torch.bfloat16] * 3
    h32, w32, b32 = (t.detach().float().requires_grad_() for t in (h, head.weight, head.bias))
    head32 = OutputHead(w32, b32, softcap=5.0)
    ref = _naive(h32, head32, y, weights=wt.float(), target_b=yb, lam=lam.float())
    ref_g = torch.autograd.grad(ref, [h32, w32, b32])
    torch.testing.assert_close(out.loss_sum, ref, rtol=2e-2, atol=2e-2)
    for a, b in zip(g, ref_g):
        torch.testing.assert_close(a.float(), b, rtol=5e-2, atol=5e-2)


def test_empty_input():
    w = torch.randn(V, D, requires_grad=True)
    b = torch.randn(V, requires_grad=True)
    h = torch.zeros(0, D, requires_grad=True)
    y = torch.zeros(0, dtype=torch.long)
    out = linear_cross_entropy(h, OutputHead(w, b), y, return_stats=True)
    assert out.loss_sum.item() == 0.0 and out.loss_sum.requires_grad
    assert out.token_nll.shape == (0,) and out.token_correct.shape == (0,)
    out.loss_sum.backward()
    assert torch.equal(w.grad, torch.zeros_like(w)) and torch.equal(b.grad, torch.zeros_like(b))
    assert h.grad.shape == (0, D)


def test_inference_mode_same_value_no_grad_work(monkeypatch):
    h, head, y, yb, lam, wt = _make(bias=True, softcap=2.0)
    ref = linear_cross_entropy(h, head, y, target_b=yb, lam=lam, weights=wt, return_stats=True)
    calls = []
    real_run = ce._run

    def spy(*args):
        calls.append(args[-1])
        return real_run(*args)

    monkeypatch.setattr(ce, "_run", spy)
    with torch.inference_mode():
        out = linear_cross_entropy(h, head, y, target_b=yb, lam=lam, weights=wt, return_stats=True)
    assert calls == [(False, False, False)]
    assert out.loss_sum.grad_fn is None and not out.loss_sum.requires_grad
    torch.testing.assert_close(out.loss_sum, ref.loss_sum.detach())
    torch.testing.assert_close(out.token_nll, ref.token_nll)
    assert torch.equal(out.token_correct, ref.token_correct)


def test_frozen_head_only_hidden_grad(monkeypatch):
    h, head, y, *_ = _make()
    head.weight.requires_grad_(False)
    got = torch.autograd.grad(linear_cross_entropy(h, head, y, chunk_size=3).loss_sum, h)[0]
    torch.testing.assert_close(got, torch.autograd.grad(_naive(h, head, y), h)[0])
    calls = []
    real_run = ce._run
    monkeypatch.setattr(ce, "_run", lambda *a, **k: calls.append(a[-1]) or real_run(*a, **k))
    linear_cross_entropy(h, head, y)
    assert calls == [(True, False, False)]  # no (V, D) gradient buffer for a frozen head


def test_tied_weight_receives_both_gradients():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, D).double()
    ids = torch.tensor([1, 4, 4, 9, 0])
    y = torch.tensor([4, 4, 9, 0, 2])
    proj = torch.nn.Linear(D, D).double()

    def loss_fn(fused):
        h = torch.tanh(proj(emb(ids)))  # a tiny "model" whose input embedding is the head
        head = OutputHead(emb.weight)
        if fused:
            return linear_cross_entropy(h, head, y, chunk_size=2).loss_sum
        return _naive(h, head, y)

    grads = []
    for fused in (True, False):
        emb.zero_grad(), proj.zero_grad()
        loss_fn(fused).backward()
        grads.append((emb.weight.grad.clone(), proj.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_validation_errors():
    h, head, y, yb, lam, wt = _make()
    with pytest.raises(ValueError, match="hidden"):
        linear_cross_entropy(h[:, :3], head, y)
    with pytest.raises(ValueError, match="target"):
        linear_cross_entropy(h, head, y[:3])
    with pytest.raises(ValueError, match="target"):
        linear_cross_entropy(h, head, y.float())
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        linear_cross_entropy(h, head, torch.full((N,), V))
    with pytest.raises(ValueError, match="together"):
        linear_cross_entropy(h, head, y, target_b=yb)
    with pytest.raises(ValueError, match="weights"):
        linear_cross_entropy(h, head, y, weights=wt[:2])
    with pytest.raises(ValueError, match="chunk_size"):
        linear_cross_entropy(h, head, y, chunk_size=0)
    with pytest.raises(ValueError, match="bias"):
        linear_cross_entropy(h, OutputHead(head.weight, torch.zeros(3)), y)


def test_response_cross_entropy_scores_only_labelled_next_tokens():
    from sftmix.loss.ce import response_cross_entropy

    torch.manual_seed(0)
    hidden, w = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    labels = torch.tensor([[-100, -100, 2, 4], [-100, 1, -100, 3]])  # prompt tokens carry no label
    ce, mask = response_cross_entropy(hidden, labels, OutputHead(w), return_stats=True)
    assert mask.tolist() == [[False, True, True], [True, False, True]]
    # position t predicts token t+1: rows (0, t=1)->2, (0, 2)->4, (1, 0)->1, (1, 2)->3
    picked = torch.stack([hidden[0, 1], hidden[0, 2], hidden[1, 0], hidden[1, 2]])
    expected = torch.nn.functional.cross_entropy(picked @ w.T, torch.tensor([2, 4, 1, 3]), reduction="none")
    assert torch.allclose(ce.token_nll, expected) and torch.isclose(ce.loss_sum, expected.sum())


def test_token_set_sums_split_trained_and_content_tokens():
    from sftmix.dynamics.scoring import token_set_sums

    nll = torch.tensor([1.0, 2.0, 3.0, 4.0])                     # the 4 trained targets, row-major
    correct = torch.tensor([True, False, True, True])
    mask = torch.tensor([[True, True, False], [False, True, True]])
    content = torch.tensor([[True, False, False], [False, True, True]])  # row 0's 2nd target: end of turn
    sums = token_set_sums(nll, correct, mask, content)
    assert sums["trained"].nll_sum.tolist() == [3.0, 7.0] and sums["trained"].n_tokens.tolist() == [2, 2]
    assert sums["content"].nll_sum.tolist() == [1.0, 7.0] and sums["content"].n_tokens.tolist() == [1, 2]
    assert sums["content"].correct_sum.tolist() == [1, 2]
    assert list(token_set_sums(nll, correct, mask)) == ["trained"]


def test_token_set_sums_computes_only_the_sets_asked_for():
    from sftmix.dynamics.scoring import token_set_sums

    mask = torch.tensor([[True, True]])
    sums = token_set_sums(torch.tensor([1.0, 2.0]), torch.tensor([True, True]), mask,
                          torch.tensor([[True, False]]), sets={"content"})
    assert list(sums) == ["content"] and sums["content"].nll_sum.tolist() == [1.0]


# ---------------------------------------------------------------- the chunk bounded by bytes of logits
def test_effective_chunk_size_bounds_logits_bytes():
    from sftmix.loss.ce import MIN_CHUNK_TOKENS, effective_chunk_size

    mib = 2**20
    # Gemma 3: 262,144 float32 logits per token = 1 MiB; 128 MiB -> 128 tokens.
    assert effective_chunk_size(4096, 262144, torch.float32, 128 * mib) == 128
    assert effective_chunk_size(4096, 49152, torch.float32, 128 * mib) == 682  # 134217728 // 196608
    assert effective_chunk_size(100, 49152, torch.float32, 128 * mib) == 100  # the token bound is smaller
    assert effective_chunk_size(4096, 262144, torch.float64, 128 * mib) == 64  # float64 softmax: 8 bytes
    assert effective_chunk_size(4096, 262144, torch.bfloat16, 128 * mib) == 128  # softmax in float32
    assert effective_chunk_size(4096, 10**9, torch.float32, 128 * mib) == MIN_CHUNK_TOKENS
    assert effective_chunk_size(4096, 262144, torch.float32, None) == 4096


def test_byte_bound_changes_chunks_not_results(monkeypatch):
    """V = 11 float64 logits are 88 bytes a token: a 200-byte bound gives chunks of 2 tokens (4 for N = 7),
    with the same loss, gradients and stats as one chunk and as the naive reference."""
    monkeypatch.setattr(ce, "MIN_CHUNK_TOKENS", 1)
    h, head, y, yb, lam, wt = _make()
    sizes = []
    real = ce._chunk_logits
    monkeypatch.setattr(ce, "_chunk_logits", lambda x, hd: sizes.append(x.shape[0]) or real(x, hd))
    kw = dict(weights=wt, target_b=yb, lam=lam, return_stats=True, chunk_size=4096)
    bounded = linear_cross_entropy(h, head, y, max_chunk_bytes=200, **kw)
    assert sizes == [2, 2, 2, 1]
    sizes.clear()
    one = linear_cross_entropy(h, head, y, max_chunk_bytes=None, **kw)
    assert sizes == [7]
    for a, b in zip(bounded, one):  # loss and every per-token stat
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    _check(h, head, y, chunk_size=4096, max_chunk_bytes=200, weights=wt, target_b=yb, lam=lam)  # grads vs naive
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        linear_cross_entropy(h, head, y, max_chunk_bytes=0)


# ---------------------------------------------------------------- the tied embedding's sparse gradient
class _OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def _tiny_step(model, sparse: bool):
    from sftmix.loss.ce import response_cross_entropy
    from sftmix.loss.head import forward_hidden, output_head

    ids = torch.tensor([[5, 9, 9, 17, 3, 0], [7, 7, 2, 40, 41, 42]])  # row 0 ends in padding (id 0)
    labels = torch.tensor([[-100, -100, 9, 17, 3, -100], [-100, -100, -100, 40, 41, 42]])
    model.zero_grad(set_to_none=True)
    hidden = forward_hidden(model, ids, (ids != 0).long(), sparse_embedding_grad=sparse)
    ce_out, _ = response_cross_entropy(hidden, labels, output_head(model))
    log = _OpLog()
    with log:
        ce_out.loss_sum.backward()
    return ce_out.loss_sum.detach(), {n: p.grad for n, p in model.named_parameters()}, log.ops


def test_tied_embedding_sparse_gradient_same_values_no_dense_temporary():
    from sftmix.toy import build_tiny_model

    model = build_tiny_model("gemma", vocab_size=64, hidden_size=16).double().train()  # tied head
    emb = model.get_input_embeddings()
    assert emb.weight is model.get_output_embeddings().weight
    loss_d, grads_d, ops_d = _tiny_step(model, sparse=False)
    loss_s, grads_s, ops_s = _tiny_step(model, sparse=True)
    assert "aten.embedding_dense_backward" in ops_d and "aten.embedding_dense_backward" not in ops_s
    assert not emb.sparse  # restored after the forward
    assert loss_s == loss_d
    assert grads_s.keys() == grads_d.keys()
    for name, g in grads_s.items():
        assert g.layout == torch.strided, name  # .grad stays dense: AdamW can use it
        torch.testing.assert_close(g, grads_d[name], rtol=1e-12, atol=1e-14)


def test_untied_or_frozen_embedding_keeps_dense_gradient():
    from sftmix.toy import build_tiny_model

    untied = build_tiny_model("llama", vocab_size=64, hidden_size=16).double().train()
    *_, ops = _tiny_step(untied, sparse=True)
    assert "aten.embedding_dense_backward" in ops  # nothing to merge with: the ordinary path
    frozen = build_tiny_model("gemma", vocab_size=64, hidden_size=16).double().train()
    frozen.get_input_embeddings().weight.requires_grad_(False)
    _, grads, _ = _tiny_step(frozen, sparse=True)
    assert grads["model.embed_tokens.weight"] is None
    assert grads["model.norm.weight"] is not None


# ---------------------------------------------------------------- one (V, D) head gradient for two calls
def _two_calls(seed=1):
    h, head, y, yb, lam, wt = _make(seed=seed)  # N = 7 >= D = 5: the first call keeps a (V, D) buffer
    g = torch.Generator().manual_seed(seed + 10)
    h2 = torch.randn(3, D, generator=g, dtype=torch.float64).requires_grad_()  # 3 < D: the second keeps dz
    y2, y2b = torch.randint(0, V, (3,), generator=g), torch.randint(0, V, (3,), generator=g)
    lam2 = torch.tensor([0.25, 1.0, 0.5], dtype=torch.float64)
    return h, head, y, h2, y2, y2b, lam2


def _spy_alphas(monkeypatch):
    alphas, real = [], ce._add_weight_grad
    monkeypatch.setattr(ce, "_add_weight_grad", lambda *a, alpha=1.0: alphas.append(alpha) or real(*a, alpha=alpha))
    return alphas


def test_second_call_adds_into_the_first_calls_weight_gradient(monkeypatch):
    h, head, y, h2, y2, y2b, lam2 = _two_calls()
    alphas = _spy_alphas(monkeypatch)
    l1 = linear_cross_entropy(h, head, y, chunk_size=3).loss_sum
    l2 = linear_cross_entropy(h2, head, y2, target_b=y2b, lam=lam2, chunk_size=2).loss_sum
    assert alphas == [1.0, 1.0, 1.0]  # the first call's three chunks; the second's two are kept, not formed
    (0.3 * l1 + 1.7 * l2).backward()
    assert alphas[3:] == [1.7, 1.7]  # added into the first call's buffer with the second's scale
    ref = 0.3 * _naive(h, head, y) + 1.7 * _naive(h2, head, y2, target_b=y2b, lam=lam2)
    ps = [h, h2, head.weight]
    want = torch.autograd.grad(ref, ps)
    for p, w in zip(ps, want):
        torch.testing.assert_close(p.grad, w, rtol=1e-12, atol=1e-12)


def test_kept_call_forms_its_own_gradient_when_the_first_will_not_run():
    h, head, y, h2, y2, y2b, lam2 = _two_calls()
    l1 = linear_cross_entropy(h, head, y, chunk_size=3).loss_sum
    l2 = linear_cross_entropy(h2, head, y2, target_b=y2b, lam=lam2, chunk_size=2).loss_sum
    (2.0 * l2).backward()  # the first call is not part of this backward
    want2 = torch.autograd.grad(2.0 * _naive(h2, head, y2, target_b=y2b, lam=lam2), head.weight)[0]
    torch.testing.assert_close(head.weight.grad, want2, rtol=1e-12, atol=1e-12)
    l1.backward()  # then the first alone: only its own gradient is added
    want1 = torch.autograd.grad(_naive(h, head, y), head.weight)[0]
    torch.testing.assert_close(head.weight.grad, want1 + want2, rtol=1e-12, atol=1e-12)


def test_kept_call_after_the_first_has_run():
    h, head, y, h2, y2, y2b, lam2 = _two_calls()
    l1 = linear_cross_entropy(h, head, y, chunk_size=3).loss_sum
    l2 = linear_cross_entropy(h2, head, y2, target_b=y2b, lam=lam2, chunk_size=2).loss_sum
    l1.backward()
    l2.backward()
    want = torch.autograd.grad(_naive(h, head, y) + _naive(h2, head, y2, target_b=y2b, lam=lam2), head.weight)[0]
    torch.testing.assert_close(head.weight.grad, want, rtol=1e-12, atol=1e-12)
