"""Issue 11's torch-face defects: double backward, small integer targets, zero rows, NumPy integers, the module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xent.torch as xt

from torch_reference import _reference_linear_cross_entropy
from xtorch_helpers import assert_close, make_problem

REDUCTIONS = ["mean", "sum", "none"]


def _penalised(loss, inputs):
    """loss + sum of squared gradients (a gradient penalty), differentiated again."""
    first = torch.autograd.grad(loss.sum(), inputs, create_graph=True)
    total = loss.sum() + sum((g**2).sum() for g in first)
    return torch.autograd.grad(total, inputs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradient_penalty_equals_torch(reduction):
    """create_graph=True: the penalty's gradient is not dropped (it was silently 0 before)."""
    z = torch.randn(7, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    t = torch.randint(0, 5, (7, 2), generator=torch.Generator().manual_seed(1))
    t[0, 0] = -100
    w = torch.rand(5, dtype=torch.float64) + 0.5
    kw = dict(label_smoothing=0.1, reduction=reduction)
    ours = _penalised(xt.cross_entropy(z, t, class_weights=w, **kw), [z])
    ref = _penalised(F.cross_entropy(z, t, weight=w, **kw), [z])
    assert_close(ours[0], ref[0], rtol=1e-10)
    # the penalty really contributes: the plain gradient differs
    plain = torch.autograd.grad(F.cross_entropy(z, t, weight=w, **kw).sum(), z)[0]
    assert (ours[0] - plain).abs().max() > 1e-3


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_linear_cross_entropy_gradient_penalty_equals_reference(reduction):
    hidden, weight, b, target = make_problem(n=9, d=4, v=11, ignore_every=4)
    w = torch.rand(11, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5
    kw = dict(bias=b, class_weights=w, label_smoothing=0.2, z_loss=0.05, softcap=3.0, reduction=reduction)
    ours = _penalised(xt.linear_cross_entropy(hidden, weight, target, chunk_size=4, **kw), [hidden, weight, b])
    ref = _penalised(_reference_linear_cross_entropy(hidden, weight, target, **kw), [hidden, weight, b])
    for g1, g2 in zip(ours, ref):
        assert_close(g1, g2, rtol=1e-10)
    # without z-loss and softcap, torch's own double backward is the peer
    kw = dict(label_smoothing=0.2, reduction=reduction)
    ours = _penalised(xt.linear_cross_entropy(hidden, weight, target, bias=b, **kw), [hidden, weight, b])
    ref = _penalised(F.cross_entropy(hidden @ weight.T + b, target, **kw), [hidden, weight, b])
    for g1, g2 in zip(ours, ref):
        assert_close(g1, g2, rtol=1e-10)


def test_gradgradcheck_both_functions():
    """Second derivatives against finite differences (one reduction each: the penalty tests cover the rest)."""
    hidden, weight, b, target = make_problem(n=4, d=2, v=4, ignore_every=3)
    w = torch.rand(4, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.5
    kw = dict(class_weights=w, label_smoothing=0.1, z_loss=0.1, softcap=2.0, chunk_size=2)

    def lin(h, W, bb):
        return xt.linear_cross_entropy(h, W, target, bias=bb, **kw)

    def ce(z):
        return xt.cross_entropy(z, target, reduction="none", **kw)

    assert torch.autograd.gradgradcheck(lin, (hidden, weight, b), nondet_tol=1e-12)
    assert torch.autograd.gradgradcheck(ce, ((hidden @ weight.T).detach().requires_grad_(),), nondet_tol=1e-12)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_small_integer_targets_equal_int64(dtype):
    hidden, weight, b, _ = make_problem(n=12, d=4, v=200, ignore_every=0)
    target = torch.tensor([0, 5, 99, 127, 1, 2, 3, 4, 5, 6, 7, 8])
    if dtype == torch.uint8:
        target[1] = 156  # as int8, 156 would wrap to -100 and be ignored
    small = target.to(dtype)
    for kw in ({}, {"ignore_index": 3, "label_smoothing": 0.1}, {"reduction": "none"}):
        got = xt.linear_cross_entropy(hidden, weight, small, bias=b, **kw)
        want = xt.linear_cross_entropy(hidden, weight, target, bias=b, **kw)
        assert_close(got, want, rtol=1e-12)
        assert_close(xt.cross_entropy(hidden @ weight.T, small, **kw), F.cross_entropy(hidden @ weight.T, target, **kw),
                     rtol=1e-12)
    if dtype == torch.uint8:
        none = xt.cross_entropy(hidden @ weight.T, small, reduction="none")
        assert none[1] > 0  # label 156 counted, not mistaken for ignore_index=-100


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_zero_rows_backward(reduction):
    z = torch.zeros(0, 5, requires_grad=True)
    y = torch.zeros(0, dtype=torch.long)
    xt.cross_entropy(z, y, reduction=reduction).sum().backward()
    assert z.grad.shape == (0, 5)
    h = torch.zeros(0, 3, requires_grad=True)
    W = torch.randn(5, 3, requires_grad=True)
    xt.linear_cross_entropy(h, W, y, reduction=reduction).sum().backward()
    assert h.grad.shape == (0, 3)
    assert torch.all(W.grad == 0)


def test_ignore_index_accepts_numpy_and_torch_integers():
    h, w, b, t = make_problem(n=8, d=3, v=5)
    want = xt.linear_cross_entropy(h, w, t, ignore_index=-100)
    for idx in (np.int64(-100), np.int32(-100), torch.tensor(-100)):
        assert_close(xt.linear_cross_entropy(h, w, t, ignore_index=idx), want, rtol=1e-12)
        assert_close(xt.cross_entropy(h @ w.T, t, ignore_index=idx), F.cross_entropy(h @ w.T, t), rtol=1e-12)
        assert xt.CrossEntropyLoss(ignore_index=idx).ignore_index == -100
    for bad in (np.float64(-100.0), True, "-100"):
        with pytest.raises(TypeError, match=r"`ignore_index` must be an integer"):
            xt.cross_entropy(h @ w.T, t, ignore_index=bad)


def test_linear_cross_entropy_loss_module_as_in_the_readme():
    """``LinearCrossEntropyLoss(ignore_index=-100)`` holds no weight: loss_fn(hidden, weight, target)."""
    h, w, b, t = make_problem(n=10, d=4, v=7)
    loss_fn = xt.LinearCrossEntropyLoss(ignore_index=-100, label_smoothing=0.1)
    assert list(loss_fn.parameters()) == []
    ours = loss_fn(h, w, t)
    assert_close(ours, F.cross_entropy(h @ w.T, t, label_smoothing=0.1), rtol=1e-12)
    assert_close(loss_fn(h, w, t, bias=b), F.cross_entropy(h @ w.T + b, t, label_smoothing=0.1), rtol=1e-12)
    with pytest.raises(TypeError, match=r"holds no weight: call it as loss_fn\(hidden, weight, target"):
        loss_fn(h, t)
    owned = xt.LinearCrossEntropyLoss(4, 7, bias=False, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"holds its own weight: call it as loss_fn\(hidden, target\)"):
        owned(h, w, t)
    with pytest.raises(ValueError, match=r"`in_features` and `num_classes` must be given together"):
        xt.LinearCrossEntropyLoss(4)
