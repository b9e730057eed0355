"""xent.torch.linear_cross_entropy against F.cross_entropy on materialised logits and the reference."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import xent.torch as xt

from torch_reference import _reference_linear_cross_entropy
from xtorch_helpers import assert_close, grads, make_problem

REDUCTIONS = ["mean", "sum", "none"]


def _torch_loss(hidden, weight, bias, target, **kw):
    z = hidden @ weight.T
    if bias is not None:
        z = z + bias
    return F.cross_entropy(
        z.reshape(-1, weight.shape[0]), target.reshape(-1), weight=kw.get("class_weights"),
        ignore_index=kw.get("ignore_index", -100), label_smoothing=kw.get("label_smoothing", 0.0),
        reduction=kw.get("reduction", "mean"),
    ).reshape(target.shape if kw.get("reduction") == "none" else ())


def _class_weights(v, dtype=torch.float64, seed=3):
    return torch.rand(v, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype) + 0.1


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"label_smoothing": 0.2},
        {"class_weights": True},
        {"class_weights": True, "label_smoothing": 0.35},
        {"label_smoothing": 1.0},
        {"ignore_index": 3},
    ],
    ids=["plain", "smooth", "weights", "weights+smooth", "smooth=1", "ignore=3"],
)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("lead", [None, (3, 7)], ids=["N,d", "B,T,d"])
def test_matches_torch_cross_entropy(reduction, opts, bias, lead):
    hidden, weight, b, target = make_problem(lead=lead, bias=bias, v=29)
    kw = dict(opts, reduction=reduction)
    if "ignore_index" in kw:  # some labels 3 (ignored) and no -100 left
        target = torch.where(target == -100, kw["ignore_index"], target)
    if kw.pop("class_weights", False):
        kw["class_weights"] = _class_weights(29)
    ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, chunk_size=4, **kw)
    ref = _torch_loss(hidden, weight, b, target, **kw)
    assert ours.shape == ref.shape
    assert_close(ours, ref, rtol=1e-12)
    upstream = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(7))
    for g_ours, g_ref in zip(grads(ours, (hidden, weight, b), upstream), grads(ref, (hidden, weight, b), upstream)):
        assert_close(g_ours, g_ref, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "opts",
    [
        {"z_loss": 1e-2},
        {"softcap": 2.5},
        {"softcap": 4.0, "z_loss": 0.1, "label_smoothing": 0.1, "class_weights": True},
    ],
    ids=["zloss", "softcap", "everything"],
)
def test_matches_reference_zloss_softcap(reduction, opts):
    hidden, weight, b, target = make_problem(lead=(2, 9), v=31)
    kw = dict(opts, reduction=reduction)
    if kw.pop("class_weights", False):
        kw["class_weights"] = _class_weights(31)
    ours, lse = xt.linear_cross_entropy(hidden, weight, target, bias=b, chunk_size=5, return_lse=True, **kw)
    ref, ref_lse = _reference_linear_cross_entropy(hidden, weight, target, bias=b, return_lse=True, **kw)
    assert_close(ours, ref, rtol=1e-12)
    assert_close(lse, ref_lse, rtol=1e-12)
    upstream = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(8))
    for g_ours, g_ref in zip(grads(ours, (hidden, weight, b), upstream), grads(ref, (hidden, weight, b), upstream)):
        assert_close(g_ours, g_ref, rtol=1e-12)


def test_zloss_and_softcap_formulas_independently():
    """z-loss = F.cross_entropy + z * w_y * lse^2; softcap = F.cross_entropy on c * tanh(z / c)."""
    hidden, weight, b, target = make_problem(v=13)
    w = _class_weights(13)
    z = hidden @ weight.T + b
    lse = torch.logsumexp(z, -1)
    valid = target != -100
    ce = F.cross_entropy(z, target, weight=w, reduction="none")
    expected = ce + torch.where(valid, 0.05 * w[target.clamp_min(0)] * lse**2, 0.0)
    ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, class_weights=w, z_loss=0.05, reduction="none")
    assert_close(ours, expected, rtol=1e-12)
    capped = F.cross_entropy(3.0 * torch.tanh(z / 3.0), target, reduction="sum")
    ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, softcap=3.0, reduction="sum")
    assert_close(ours, capped, rtol=1e-12)
    for g1, g2 in zip(grads(ours, (hidden, weight, b)), grads(capped, (hidden, weight, b))):
        assert_close(g1, g2, rtol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 37, 1000, None])
def test_chunk_sizes_agree(chunk_size):
    """N=37 is not a multiple of most chunk sizes; V=29 is not a multiple of anything here."""
    hidden, weight, b, target = make_problem(n=37, v=29)
    ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, label_smoothing=0.1, chunk_size=chunk_size)
    ref = _torch_loss(hidden, weight, b, target, label_smoothing=0.1)
    assert_close(ours, ref, rtol=1e-12)
    for g1, g2 in zip(grads(ours, (hidden, weight, b)), grads(ref, (hidden, weight, b))):
        assert_close(g1, g2, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_gives_zero_loss_and_zero_grads(reduction):
    hidden, weight, b, target = make_problem(n=6)
    target = torch.full_like(target, -100)
    ours, lse = xt.linear_cross_entropy(hidden, weight, target, bias=b, reduction=reduction, label_smoothing=0.1,
                                        z_loss=0.1, return_lse=True)
    assert torch.all(ours == 0)
    assert torch.isfinite(lse).all()
    for g in grads(ours, (hidden, weight, b), torch.randn(ours.shape, dtype=ours.dtype)):
        assert torch.all(g == 0)
    # PyTorch gives NaN for the mean here; we define it as 0.
    if reduction == "mean":
        assert torch.isnan(_torch_loss(hidden, weight, b, target))


def test_zero_total_weight_mean_is_zero():
    hidden, weight, b, target = make_problem(n=8, ignore_every=0)
    w = torch.zeros(weight.shape[0], dtype=torch.float64)
    loss = xt.linear_cross_entropy(hidden, weight, target, class_weights=w, label_smoothing=0.0)
    assert loss.item() == 0.0
    assert all(torch.all(g == 0) for g in grads(loss, (hidden, weight)))


def test_return_lse_is_logsumexp_and_float32_for_low_precision():
    hidden, weight, b, target = make_problem(lead=(2, 5))
    _, lse = xt.linear_cross_entropy(hidden, weight, target, bias=b, return_lse=True)
    assert lse.shape == target.shape
    assert_close(lse, torch.logsumexp(hidden @ weight.T + b, -1).detach(), rtol=1e-12)
    h16, w16 = hidden.detach().to(torch.bfloat16), weight.detach().to(torch.bfloat16)
    loss, lse16 = xt.linear_cross_entropy(h16, w16, target, return_lse=True)
    assert lse16.dtype == torch.float32 and loss.dtype == torch.float32
    assert not lse16.requires_grad


def test_gradcheck_float64():
    hidden, weight, b, target = make_problem(n=5, d=3, v=7, ignore_every=4)
    w = _class_weights(7)

    def f(h, W, bb):
        return xt.linear_cross_entropy(h, W, target, bias=bb, class_weights=w, label_smoothing=0.2, z_loss=0.05,
                                       softcap=2.0, chunk_size=2)

    def f_none(h, W, bb):
        return xt.linear_cross_entropy(h, W, target, bias=bb, class_weights=w, label_smoothing=0.2, z_loss=0.05,
                                       softcap=2.0, chunk_size=2, reduction="none")

    # nondet_tol: gradcheck's reentrancy check runs backward twice; the second run recomputes
    # the gradients (the forward-pass ones are handed out once), a different summation order.
    assert torch.autograd.gradcheck(f, (hidden, weight, b), nondet_tol=1e-12)
    assert torch.autograd.gradcheck(f_none, (hidden, weight, b), nondet_tol=1e-12)


def test_partial_requires_grad_and_no_grad():
    hidden, weight, b, target = make_problem()
    ref = _torch_loss(hidden, weight, b, target, label_smoothing=0.1)
    frozen_w = weight.detach()
    ours = xt.linear_cross_entropy(hidden, frozen_w, target, bias=b, label_smoothing=0.1)
    (gh, gb) = grads(ours, (hidden, b))
    rh, rb = grads(ref, (hidden, b))
    assert_close(gh, rh, rtol=1e-12)
    assert_close(gb, rb, rtol=1e-12)
    with torch.no_grad():
        for reduction in REDUCTIONS:
            out = xt.linear_cross_entropy(hidden, weight, target, bias=b, reduction=reduction)
            assert_close(out, _torch_loss(hidden, weight, b, target, reduction=reduction), rtol=1e-12)
            assert not out.requires_grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_second_backward_with_retain_graph_is_exact(reduction):
    """The forward-pass gradients are handed out once; a second backward recomputes them."""
    hidden, weight, b, target = make_problem()
    loss = xt.linear_cross_entropy(hidden, weight, target, bias=b, label_smoothing=0.1, reduction=reduction)
    ref = _torch_loss(hidden, weight, b, target, label_smoothing=0.1, reduction=reduction)
    for k in range(3):
        up = torch.full(ref.shape, 0.5 + k, dtype=ref.dtype)
        got = torch.autograd.grad(loss, (hidden, weight, b), up, retain_graph=True)
        want = torch.autograd.grad(ref, (hidden, weight, b), up, retain_graph=True)
        for g1, g2 in zip(got, want):
            assert_close(g1, g2, rtol=1e-12)


def test_float32_matches_torch_within_1e5():
    hidden, weight, b, target = make_problem(n=64, d=32, v=300, dtype=torch.float32)
    ref = _torch_loss(hidden, weight, b, target, label_smoothing=0.1)
    ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, label_smoothing=0.1, chunk_size=16)
    assert ours.dtype == torch.float32
    assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for g1, g2 in zip(grads(ours, (hidden, weight, b)), grads(ref, (hidden, weight, b))):
        assert_close(g1, g2, rtol=1e-5, atol=1e-5 * g2.abs().max().item())


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bfloat16_tolerances(reduction):
    """The documented bf16 tolerances: loss 1e-2 relative, gradients 2e-2 of their largest entry."""
    hidden, weight, b, target = make_problem(n=48, d=64, v=200, dtype=torch.float64)
    hidden = (hidden.detach() * 0.5).to(torch.bfloat16).requires_grad_()
    weight = (weight.detach() * 0.2).to(torch.bfloat16).requires_grad_()
    b = b.detach().to(torch.bfloat16).requires_grad_()
    ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, label_smoothing=0.1, reduction=reduction,
                                   chunk_size=16)
    h64, w64, b64 = (x.detach().double().requires_grad_() for x in (hidden, weight, b))
    ref = _torch_loss(h64, w64, b64, target, label_smoothing=0.1, reduction=reduction)
    assert ours.dtype == torch.float32
    assert_close(ours.double(), ref.detach(), rtol=1e-2, atol=1e-2)
    upstream = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = grads(ours, (hidden, weight, b), upstream.float())
    want = grads(ref, (h64, w64, b64), upstream)
    for g, r, x in zip(got, want, (hidden, weight, b)):
        assert g.dtype == x.dtype == torch.bfloat16
        scale = r.abs().max().item()
        assert (g.double() - r).abs().max().item() <= 2e-2 * scale


def test_large_logits_do_not_overflow():
    hidden, weight, b, target = make_problem(n=8, dtype=torch.float32)
    big = (hidden.detach() * 1e3).requires_grad_()
    ours = xt.linear_cross_entropy(big, weight, target, bias=b, label_smoothing=0.1, z_loss=1e-4, reduction="none")
    ref = _reference_linear_cross_entropy(big.double(), weight.double(), target, bias=b.double(), label_smoothing=0.1,
                                          z_loss=1e-4, reduction="none")
    assert torch.isfinite(ours).all()
    assert_close(ours.double(), ref, rtol=1e-5)


def test_options_cross_product_small():
    """Every pairing of options against the reference, float64, on one tiny problem."""
    hidden, weight, b, target = make_problem(n=9, d=4, v=11, ignore_every=3)
    w = _class_weights(11)
    for ls, cw, zl, sc, red in itertools.product([0.0, 0.3], [None, w], [0.0, 0.2], [None, 1.5], REDUCTIONS):
        kw = dict(label_smoothing=ls, class_weights=cw, z_loss=zl, softcap=sc, reduction=red)
        ours = xt.linear_cross_entropy(hidden, weight, target, bias=b, chunk_size=2, **kw)
        ref = _reference_linear_cross_entropy(hidden, weight, target, bias=b, **kw)
        assert_close(ours, ref, rtol=1e-12)
        up = torch.linspace(-1, 2, ref.numel(), dtype=ref.dtype).reshape(ref.shape)
        for g1, g2 in zip(grads(ours, (hidden, weight, b), up), grads(ref, (hidden, weight, b), up)):
            assert_close(g1, g2, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_bfloat16_chunks_and_both_weight_gradient_gemms_agree(monkeypatch, reduction):
    """Low-precision chunks of 16 rows (50 = 3 x 16 + 2) equal one chunk of 64, with the
    low-precision h.T @ g product into the transposed accumulator and with the float32 GEMM."""
    import xent.torch._linear as lin

    hidden, weight, b, _ = make_problem(n=50, d=16, v=40, dtype=torch.float64)
    hidden, weight, b = ((x.detach() * 0.5).to(torch.bfloat16).requires_grad_() for x in (hidden, weight, b))
    target = torch.randint(0, 40, (50,), generator=torch.Generator().manual_seed(4))
    up = torch.randn(50 if reduction == "none" else (), generator=torch.Generator().manual_seed(5))

    def run(chunk_size):
        out = xt.linear_cross_entropy(hidden, weight, target, bias=b, reduction=reduction, chunk_size=chunk_size)
        return torch.autograd.grad(out, (hidden, weight, b), up)

    whole = run(64)
    runs = [run(16)]
    for fast in (True, False):
        monkeypatch.setattr(lin, "low_precision_gemm", lambda dtype, device, fast=fast: fast)
        runs += [run(16), run(64)]
    for pieces in runs:
        for g1, g2 in zip(pieces, whole):
            assert g1.dtype == torch.bfloat16 and g1.is_contiguous()
            assert_close(g1.float(), g2.float(), rtol=1e-2, atol=1e-2 * g2.float().abs().max().item())
