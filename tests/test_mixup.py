"""Tests for sftmix.loss.mixup on literal labels: alignment, loss vs hand soft-label CE, lambdas."""
import pytest
import torch

from sftmix.loss.ce import OutputHead
from sftmix.loss.mixup import align_pairs, count_mixup_positions, mixup_loss, sample_lambdas
from sftmix.recipe import ALIGNMENTS

X = -100
# Three pairs, T = 8, with different prompt and response lengths (unshifted labels).
LABELS_A = torch.tensor([
    [X, X, X, 11, 12, 13, 14, X],   # prompt 3, response 4 -> predicting 2, 3, 4, 5
    [X, 21, 22, X, X, X, X, X],      # prompt 1, response 2 -> predicting 0, 1
    [X, X, 31, 32, 33, 34, 35, 36],  # prompt 2, response 6 -> predicting 1..6
])
LABELS_B = torch.tensor([
    [X, 41, 42, X, X, X, X, X],      # prompt 1, response 2 -> predicting 0, 1
    [X, X, X, X, 51, 52, 53, X],     # prompt 4, response 3 -> predicting 3, 4, 5
    [X, X, X, 61, 62, 63, X, X],     # prompt 3, response 3 -> predicting 2, 3, 4
])
P, T, D, V = 3, 8, 6, 64

# Written out by hand from the comments above.
RESPONSE = dict(
    pair=[0, 0, 1, 1, 2, 2, 2],
    pos_a=[2, 3, 0, 1, 1, 2, 3], pos_b=[0, 1, 3, 4, 2, 3, 4],
    target_a=[11, 12, 21, 22, 31, 32, 33], target_b=[41, 42, 51, 52, 61, 62, 63],
    weight_a=[1.0] * 7, weight_b=[1.0] * 7,
)
# Lengths (last labelled index + 1): pair 0: 7 vs 3, pair 1: 3 vs 7, pair 2: 8 vs 6,
# so predicting t < 2, < 2, < 5; pair 2 drops t = 0 (no target on either side).
SEQUENCE = dict(
    pair=[0, 0, 1, 1, 2, 2, 2, 2],
    pos_a=[0, 1, 0, 1, 1, 2, 3, 4], pos_b=[0, 1, 0, 1, 1, 2, 3, 4],
    target_a=[0, 0, 21, 22, 31, 32, 33, 34], target_b=[41, 42, 0, 0, 0, 61, 62, 63],
    weight_a=[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    weight_b=[1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
)
EXPECTED = {"response": RESPONSE, "sequence": SEQUENCE}


def _inputs(dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    ha = torch.randn(P, T, D, generator=g, dtype=dtype).requires_grad_()
    hb = torch.randn(P, T, D, generator=g, dtype=dtype).requires_grad_()
    w = torch.randn(V, D, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(V, generator=g, dtype=dtype).requires_grad_() if bias else None
    lam = torch.tensor([0.3, 0.85, 0.05], dtype=dtype)
    return ha, hb, OutputHead(w, b, softcap=4.0), lam


def _hand_loss(ha, hb, head, lam, exp):
    """Soft-label CE built explicitly: -(p * log_softmax(head(z))).sum() per aligned position."""
    total = 0.0
    for m, k in enumerate(exp["pair"]):
        z = lam[k] * ha[k, exp["pos_a"][m]] + (1 - lam[k]) * hb[k, exp["pos_b"][m]]
        p = torch.zeros(V, dtype=ha.dtype)
        p[exp["target_a"][m]] += lam[k] * exp["weight_a"][m]
        p[exp["target_b"][m]] += (1 - lam[k]) * exp["weight_b"][m]
        total = total - (p * torch.log_softmax(head.logits(z), -1)).sum()
    return total


@pytest.mark.parametrize("alignment", ALIGNMENTS)
def test_aligned_positions_literal(alignment):
    al = align_pairs(LABELS_A, LABELS_B, alignment)
    got = {k: getattr(al, k).tolist() for k in EXPECTED[alignment]}
    assert got == EXPECTED[alignment]
    assert al.weight_a.dtype == torch.float32


@pytest.mark.parametrize("alignment", ALIGNMENTS)
def test_loss_matches_hand_soft_label_ce(alignment):
    ha, hb, head, lam = _inputs()
    out = mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head, alignment=alignment, chunk_size=3)
    ref = _hand_loss(ha, hb, head, lam, EXPECTED[alignment])
    torch.testing.assert_close(out.loss_sum, ref, rtol=1e-12, atol=1e-12)
    assert out.num_positions.item() == len(EXPECTED[alignment]["pair"])
    ps = [ha, hb, head.weight, head.bias]
    for a, b in zip(torch.autograd.grad(out.loss_sum, ps), torch.autograd.grad(ref, ps)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("side", ["a", "b"])
def test_lam_extremes_equal_plain_ce_of_one_side(side):
    ha, hb, head, _ = _inputs()
    lam = torch.ones(P, dtype=torch.float64) * (1.0 if side == "a" else 0.0)
    out = mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head)
    # Plain CE of that side over its first min(N_a, N_b) response tokens.
    h, labels = (ha, LABELS_A) if side == "a" else (hb, LABELS_B)
    counts = torch.minimum((LABELS_A != X).sum(1), (LABELS_B != X).sum(1))
    states, targets = [], []
    for k in range(P):
        pos = [t for t in range(T - 1) if labels[k, t + 1] != X][: counts[k]]
        states.append(h[k, pos])
        targets.append(labels[k, [t + 1 for t in pos]])
    ref = torch.nn.functional.cross_entropy(head.logits(torch.cat(states)), torch.cat(targets),
                                            reduction="sum")
    torch.testing.assert_close(out.loss_sum, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alignment", ALIGNMENTS)
def test_chunked_equals_unchunked(alignment):
    ha, hb, head, lam = _inputs()
    ps = [ha, hb, head.weight]
    res = []
    for cs in (1, 4, 10_000):
        loss = mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head, alignment=alignment,
                          chunk_size=cs).loss_sum
        res.append((loss, torch.autograd.grad(loss, ps)))
    for loss, grads in res[:-1]:
        torch.testing.assert_close(loss, res[-1][0], rtol=1e-12, atol=1e-12)
        for a, b in zip(grads, res[-1][1]):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_gradients_reach_both_sides_only_at_aligned_positions():
    ha, hb, head, lam = _inputs()
    mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head).loss_sum.backward()
    used_a = torch.zeros(P, T, dtype=torch.bool)
    used_b = torch.zeros(P, T, dtype=torch.bool)
    used_a[RESPONSE["pair"], RESPONSE["pos_a"]] = True
    used_b[RESPONSE["pair"], RESPONSE["pos_b"]] = True
    for grad, used in ((ha.grad, used_a), (hb.grad, used_b)):
        norms = grad.norm(dim=-1)
        assert (norms[used] > 0).all() and (norms[~used] == 0).all()


def test_bf16_hidden_close_to_fp64():
    ha, hb, head, lam = _inputs()
    ref = mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head).loss_sum
    lo = OutputHead(head.weight.detach().bfloat16(), head.bias.detach().bfloat16(), softcap=4.0)
    out = mixup_loss(ha.detach().bfloat16(), LABELS_A, hb.detach().bfloat16(), LABELS_B,
                     lam.float(), lo)
    assert out.loss_sum.dtype == torch.float32
    torch.testing.assert_close(out.loss_sum.double(), ref.detach(), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("alignment", ALIGNMENTS)
def test_count_matches_num_positions(alignment):
    ha, hb, head, lam = _inputs()
    out = mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head, alignment=alignment)
    n = count_mixup_positions(LABELS_A, LABELS_B, alignment)
    assert n.dtype == torch.long and n.dim() == 0 and n.item() == out.num_positions.item()
    # Swapping the roles of a and b keeps the count.
    assert count_mixup_positions(LABELS_B, LABELS_A, alignment).item() == n.item()


def test_no_aligned_positions_gives_zero_connected_loss():
    ha, hb, head, lam = _inputs()
    empty = torch.full((P, T), X)
    out = mixup_loss(ha, empty, hb, LABELS_B, lam, head)
    assert out.num_positions.item() == 0 and out.loss_sum.item() == 0.0
    out.loss_sum.backward()
    assert torch.equal(ha.grad, torch.zeros_like(ha))


def test_sample_lambdas_reproducible_and_shaped():
    a = sample_lambdas(1000, 0.5, generator=torch.Generator().manual_seed(7))
    b = sample_lambdas(1000, 0.5, generator=torch.Generator().manual_seed(7))
    c = sample_lambdas(1000, 0.5, generator=torch.Generator().manual_seed(8))
    assert a.shape == (1000,) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(7)
    first, second = sample_lambdas(10, 0.5, generator=g), sample_lambdas(10, 0.5, generator=g)
    assert not torch.equal(first, second)  # the generator advances


def test_sample_lambdas_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sample_lambdas(100, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(3), expected)


def test_sample_lambdas_distribution_alpha_half():
    lam = sample_lambdas(20_000, 0.5, generator=torch.Generator().manual_seed(0))
    assert ((lam >= 0) & (lam <= 1)).all()
    assert abs(lam.mean().item() - 0.5) < 0.02
    tails = ((lam < 0.1).float().mean() + (lam > 0.9).float().mean()).item()
    middle = ((lam >= 0.45) & (lam <= 0.55)).float().mean().item()
    assert tails > 3 * middle  # U-shaped: about 0.41 vs 0.064
    tiny = sample_lambdas(1000, 0.01, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(tiny).all()


def test_bad_inputs_raise():
    ha, hb, head, lam = _inputs()
    with pytest.raises(ValueError, match="response, sequence"):
        mixup_loss(ha, LABELS_A, hb, LABELS_B, lam, head, alignment="prompt")
    with pytest.raises(ValueError, match="response, sequence"):
        count_mixup_positions(LABELS_A, LABELS_B, "whole")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mixup_loss(ha, LABELS_A, hb, LABELS_B, lam + 1, head)
    with pytest.raises(ValueError, match="lam"):
        mixup_loss(ha, LABELS_A, hb, LABELS_B, lam[:2], head)
    with pytest.raises(ValueError, match="hidden_a"):
        mixup_loss(ha[:, :5], LABELS_A, hb, LABELS_B, lam, head)
    with pytest.raises(ValueError, match="pair counts"):
        align_pairs(LABELS_A, LABELS_B[:2])
    with pytest.raises(ValueError, match="head.weight"):
        mixup_loss(ha[..., :3], LABELS_A, hb[..., :3], LABELS_B, lam, head)
    with pytest.raises(ValueError, match="alpha"):
        sample_lambdas(4, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        sample_lambdas(4, -1.0)


def test_mix_hidden_literal():
    """mix_hidden picks each pair's aligned states and mixes them with that pair's lambda."""
    from sftmix.loss.mixup import mix_hidden

    ha = torch.arange(P * T * 2, dtype=torch.float64).reshape(P, T, 2)
    hb = -ha
    lam = torch.tensor([0.25, 1.0, 0.0], dtype=torch.float64)
    al = align_pairs(LABELS_A, LABELS_B, "response")
    z = mix_hidden(ha, hb, al, lam)
    for m, (k, a, b) in enumerate(zip(RESPONSE["pair"], RESPONSE["pos_a"], RESPONSE["pos_b"])):
        torch.testing.assert_close(z[m], lam[k] * ha[k, a] + (1 - lam[k]) * hb[k, b])
    torch.testing.assert_close(z[2], ha[1, 0])  # lambda = 1: the confident state itself
    torch.testing.assert_close(z[4], hb[2, 2])  # lambda = 0: the unconfident one
