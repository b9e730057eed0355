"""The core API on torch tensors runs the torch kernels: same numbers as the generic path and torch."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import xent
import xent.torch._route as route
from xent.engine import use_engine

from torch_reference import _reference_cross_entropy
from xtorch_helpers import assert_close

REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture
def routed(monkeypatch):
    """Counts the calls the torch kernels served (None = declined)."""
    served = []
    real = route.sparse_categorical_cross_entropy

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        served.append(out is not None)
        return out

    monkeypatch.setattr(route, "sparse_categorical_cross_entropy", spy)
    return served


def _problem(shape=(13, 6, 3), axis=1, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (2 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype).requires_grad_()
    c = shape[axis]
    t_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
    y = torch.randint(0, c, t_shape, generator=g)
    return z, y, c, g


def _both(fn):
    """(routed result, generic result) of the same call."""
    out = fn()
    with use_engine("reference"):
        ref = fn()
    return out, ref


@pytest.mark.parametrize(("shape", "axis"), [((13, 6), -1), ((5, 6, 3), 1), ((6,), 0)], ids=["N,C", "N,C,d", "C"])
def test_every_option_equals_generic_path_float64(routed, shape, axis):
    z, y, c, g = _problem(shape, axis)
    cw = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
    sw = torch.rand(y.shape, generator=g, dtype=torch.float64)
    if y.dim():
        sw.view(-1)[1] = 0.0  # a zero sample weight
    options = itertools.product([None, -100, 2], [0.0, 0.3], [None, cw], [None, sw], REDUCTIONS)
    for ignore, e, w, s, reduction in options:
        base = 2 if e else None
        labels = y.clone()
        if ignore is not None and labels.dim():
            labels.view(-1)[::4] = ignore
        kw = dict(from_logits=True, axis=axis, ignore_index=ignore, label_smoothing=e, class_weights=w, weights=s,
                  reduction=reduction, base=base)
        out, ref = _both(lambda kw=kw, labels=labels: xent.sparse_categorical_cross_entropy(labels, z, **kw))
        assert_close(out, ref, rtol=1e-12)
        up = torch.linspace(-1, 2, out.numel(), dtype=out.dtype).reshape(out.shape)
        (g1,) = torch.autograd.grad(out, z, up)
        (g2,) = torch.autograd.grad(ref, z, up)
        assert_close(g1, g2, rtol=1e-12, atol=1e-14)
        with torch.no_grad():
            (l1, d1), (l2, d2) = _both(
                lambda kw=kw, labels=labels: xent.sparse_categorical_cross_entropy(labels, z, return_grad=True, **kw))
        assert_close(l1, l2, rtol=1e-12)
        assert d1.shape == z.shape and d1.dtype == z.dtype
        assert_close(d1, d2, rtol=1e-12, atol=1e-14)
    assert routed and all(routed)  # every call above was served by the torch kernels


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_option_in_low_precision_equals_generic_path_and_torch(routed, dtype):
    """float32 / bfloat16, every option: the routed loss and both gradients equal the generic path's,
    and F.cross_entropy's float64 autograd on the same values where torch has the options (no sample
    weights), within 1e-6 (float32) or two roundings of bfloat16 of the largest entry."""
    z, y, c, g = _problem((12, 7), -1, dtype=dtype)
    z64 = z.detach().double().requires_grad_()
    cw = torch.rand(c, generator=g, dtype=torch.float64) + 0.1
    sw = torch.rand(y.shape, generator=g, dtype=torch.float64)
    sw[1] = 0.0
    rel = 1e-6 if dtype == torch.float32 else 2 * torch.finfo(dtype).eps

    def close(a, b):
        assert a.dtype == dtype
        tol = rel * max(b.double().abs().max().item(), 1e-30)
        assert (a.double() - b.double()).abs().max().item() <= tol, (a, b)

    for ignore, e, w, s, reduction in itertools.product([None, 2], [0.0, 0.3], [None, cw], [None, sw], REDUCTIONS):
        labels = y.clone()
        if ignore is not None:
            labels[::4] = ignore
        kw = dict(from_logits=True, ignore_index=ignore, label_smoothing=e, reduction=reduction,
                  class_weights=None if w is None else w.to(dtype), weights=None if s is None else s.to(dtype))
        out, ref = _both(lambda kw=kw, labels=labels: xent.sparse_categorical_cross_entropy(labels, z, **kw))
        close(out, ref)
        up = torch.linspace(-1, 2, out.numel(), dtype=torch.float64).reshape(out.shape)
        (g1,) = torch.autograd.grad(out, z, up.to(dtype))
        (g2,) = torch.autograd.grad(ref, z, up.to(dtype))
        close(g1, g2)
        with torch.no_grad():
            (l1, d1), (l2, d2) = _both(
                lambda kw=kw, labels=labels: xent.sparse_categorical_cross_entropy(labels, z, return_grad=True, **kw))
        close(l1, l2)
        close(d1, d2)
        if s is None:  # torch's own loss, float64 on the same values: the truth both round
            truth = F.cross_entropy(z64, labels, weight=None if w is None else w.to(dtype).double(),
                                    ignore_index=-100 if ignore is None else ignore, label_smoothing=e,
                                    reduction=reduction)
            (gt,) = torch.autograd.grad(truth, z64, up)
            close(out, truth)
            close(g1, gt)
    assert routed and all(routed)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_float32_equals_torch_and_generic(routed, smoothing):
    z, y, c, g = _problem((64, 300), -1, dtype=torch.float32)
    y[::5] = -100
    w = torch.rand(c, generator=g) + 0.5
    kw = dict(from_logits=True, ignore_index=-100, label_smoothing=smoothing, class_weights=w)
    ours = xent.sparse_categorical_cross_entropy(y, z, **kw)
    ref = F.cross_entropy(z, y, weight=w, label_smoothing=smoothing)
    assert ours.dtype == torch.float32
    assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    g1 = torch.autograd.grad(ours, z)[0]
    g2 = torch.autograd.grad(ref, z)[0]
    assert_close(g1, g2, rtol=1e-5, atol=1e-6 * g2.abs().max().item())
    with use_engine("reference"):
        generic = xent.sparse_categorical_cross_entropy(y, z, **kw)
    assert_close(ours, generic, rtol=1e-6, atol=1e-6)
    assert routed == [True]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_float32_math_on_the_same_values(routed, dtype):
    """Loss and gradient come back in the input dtype, computed in float32 (rounded once)."""
    z, y, c, g = _problem((40, 1000), -1, dtype=dtype)
    y[::3] = -100
    kw = dict(from_logits=True, ignore_index=-100, label_smoothing=0.1)
    ours = xent.sparse_categorical_cross_entropy(y, z, **kw)
    assert ours.dtype == dtype
    z64 = z.detach().double().requires_grad_()
    truth = F.cross_entropy(z64, y, label_smoothing=0.1)
    assert abs(ours.double().item() - truth.item()) <= 2 * torch.finfo(dtype).eps * truth.item()
    (g1,) = torch.autograd.grad(ours, z)
    (g2,) = torch.autograd.grad(truth, z64)
    assert g1.dtype == dtype
    assert (g1.double() - g2).abs().max() <= 2 * torch.finfo(dtype).eps * g2.abs().max()
    with torch.no_grad():
        loss, grad = xent.sparse_categorical_cross_entropy(y, z, return_grad=True, **kw)
    assert loss.dtype == grad.dtype == dtype
    assert_close(grad, g1, rtol=0, atol=0)
    assert routed == [True, True]


def test_what_the_kernels_cannot_serve_stays_generic(routed):
    z, y, c, g = _problem((9, 5), -1)
    # class weights that require grad get their gradient from the generic path
    w = (torch.rand(c, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    loss = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, class_weights=w, label_smoothing=0.1)
    gz, gw = torch.autograd.grad(loss, (z, w))
    ref = _reference_cross_entropy(z, y, class_weights=w, label_smoothing=0.1)
    for a, b in zip((gz, gw), torch.autograd.grad(ref, (z, w))):
        assert_close(a, b, rtol=1e-12)
    # return_grad on logits that require grad: the returned gradient is itself differentiable
    loss, grad = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, return_grad=True)
    assert grad.requires_grad
    assert routed == [False, False]
    # probabilities never reach the kernels
    xent.sparse_categorical_cross_entropy(y, torch.softmax(z.detach(), -1))
    assert routed == [False, False]


def test_double_backward_through_the_routed_core_equals_generic(routed):
    z, y, c, g = _problem((8, 5), -1)
    kw = dict(from_logits=True, label_smoothing=0.2, weights=torch.rand(8, generator=g, dtype=torch.float64))

    def penalised():
        loss = xent.sparse_categorical_cross_entropy(y, z, **kw)
        (first,) = torch.autograd.grad(loss, z, create_graph=True)
        return torch.autograd.grad(loss + (first**2).sum(), z)[0]

    ours, ref = _both(penalised)
    assert_close(ours, ref, rtol=1e-10)
    assert routed == [True]
