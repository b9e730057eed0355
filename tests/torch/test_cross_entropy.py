"""xent.torch.cross_entropy on materialised logits against F.cross_entropy, the reference and the core."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xent
import xent.torch as xt

from torch_reference import _reference_cross_entropy
from xtorch_helpers import assert_close

REDUCTIONS = ["mean", "sum", "none"]


def _logits(shape, *, dtype=torch.float64, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype).requires_grad_()


def _labels(shape, c, *, seed=1, ignore_every=4):
    t = torch.randint(0, c, shape, generator=torch.Generator().manual_seed(seed))
    if ignore_every:
        t.view(-1)[::ignore_every] = -100
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(13, 9), (4, 9, 3, 2), (9,)], ids=["N,C", "N,C,d1,d2", "C"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch(reduction, shape, smoothing, weighted):
    z = _logits(shape)
    c = shape[0] if len(shape) == 1 else shape[1]
    t_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = _labels(t_shape, c, ignore_every=0 if len(shape) == 1 else 4)
    w = torch.rand(c, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.1 if weighted else None
    ours = xt.cross_entropy(z, t, class_weights=w, label_smoothing=smoothing, reduction=reduction, chunk_size=3)
    ref = F.cross_entropy(z, t, weight=w, label_smoothing=smoothing, reduction=reduction)
    assert ours.shape == ref.shape
    assert_close(ours, ref, rtol=1e-12)
    up = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(3))
    (g1,) = torch.autograd.grad(ours, z, up)
    (g2,) = torch.autograd.grad(ref, z, up)
    assert_close(g1, g2, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_zloss_softcap_lse_against_reference(reduction):
    z = _logits((11, 6, 2))
    t = _labels((11, 2), 6)
    kw = dict(z_loss=0.03, softcap=1.7, label_smoothing=0.1, reduction=reduction, return_lse=True)
    ours, lse = xt.cross_entropy(z, t, chunk_size=1, **kw)
    ref, ref_lse = _reference_cross_entropy(z, t, **kw)
    assert_close(ours, ref, rtol=1e-12)
    assert_close(lse, ref_lse, rtol=1e-12)
    assert_close(lse, torch.logsumexp(1.7 * torch.tanh(z / 1.7), 1).detach(), rtol=1e-12)
    up = torch.randn(ref.shape, dtype=ref.dtype)
    assert_close(torch.autograd.grad(ours, z, up)[0], torch.autograd.grad(ref, z, up)[0], rtol=1e-12)


def test_gradcheck_float64():
    z = _logits((5, 4), scale=1.0)
    t = torch.tensor([0, 3, -100, 2, 1])
    w = torch.tensor([0.5, 1.0, 2.0, 0.3], dtype=torch.float64)
    for reduction in REDUCTIONS:
        def f(x, reduction=reduction):
            return xt.cross_entropy(x, t, class_weights=w, label_smoothing=0.1, z_loss=0.1, softcap=3.0,
                                    reduction=reduction, chunk_size=2)

        assert torch.autograd.gradcheck(f, (z,), nondet_tol=1e-12)


def test_all_ignored_is_zero_not_nan():
    z = _logits((4, 5))
    t = torch.full((4,), -100)
    loss = xt.cross_entropy(z, t)
    assert loss.item() == 0.0
    (g,) = torch.autograd.grad(loss, z)
    assert torch.all(g == 0)
    assert torch.isnan(F.cross_entropy(z, t))


def test_low_precision_inputs():
    z = _logits((32, 50), dtype=torch.float32)
    t = _labels((32,), 50)
    for dtype in (torch.bfloat16, torch.float16):
        zl = z.detach().to(dtype).requires_grad_()
        ours = xt.cross_entropy(zl, t, label_smoothing=0.1)
        assert ours.dtype == torch.float32
        ref = F.cross_entropy(zl.detach().double().requires_grad_(), t, label_smoothing=0.1)
        assert_close(ours.double(), ref.detach(), rtol=1e-6)  # same input values, float32 math
        (g,) = torch.autograd.grad(ours, zl)
        assert g.dtype == dtype


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_agrees_with_core_sparse_categorical_cross_entropy(reduction, smoothing, weighted):
    """xent.torch and xent's core loss share one convention: same numbers on the same logits."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(17, 8)) * 3
    t = rng.integers(0, 8, size=17)
    t[::3] = -100
    w = rng.uniform(0.1, 2.0, size=8) if weighted else None
    core = xent.sparse_categorical_cross_entropy(t, z, from_logits=True, ignore_index=-100, class_weights=w,
                                                 label_smoothing=smoothing, reduction=reduction)
    zt = torch.tensor(z, requires_grad=True)
    wt = None if w is None else torch.tensor(w)
    ours = xt.cross_entropy(zt, torch.tensor(t), class_weights=wt, label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(ours.detach().numpy(), np.asarray(core), rtol=1e-12, atol=1e-12)
    # and the fused path on hidden @ weight.T
    h = rng.normal(size=(17, 5))
    wt_lin = rng.normal(size=(8, 5))
    core_lin = xent.sparse_categorical_cross_entropy(t, h @ wt_lin.T, from_logits=True, ignore_index=-100,
                                                     class_weights=w, label_smoothing=smoothing, reduction=reduction)
    fused = xt.linear_cross_entropy(torch.tensor(h), torch.tensor(wt_lin), torch.tensor(t), class_weights=wt,
                                    label_smoothing=smoothing, reduction=reduction, chunk_size=4)
    np.testing.assert_allclose(fused.numpy(), np.asarray(core_lin), rtol=1e-12, atol=1e-12)


def test_core_all_ignored_agrees():
    z = np.random.default_rng(0).normal(size=(3, 4))
    t = np.full(3, -100)
    core = xent.sparse_categorical_cross_entropy(t, z, from_logits=True, ignore_index=-100)
    ours = xt.cross_entropy(torch.tensor(z), torch.tensor(t))
    assert float(core) == ours.item() == 0.0
