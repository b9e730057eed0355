"""Helpers for the torch face tests (imported by name: tests/torch is on sys.path under pytest's rootdir mode)."""

from __future__ import annotations

import torch


def make_problem(*, n=37, d=12, v=29, lead=None, dtype=torch.float64, seed=0, ignore_every=5, bias=True):
    """hidden (lead..., d) or (n, d), weight (v, d), bias (v,), target with some -100."""
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if lead is None else tuple(lead)
    hidden = torch.randn(*shape, d, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    weight = torch.randn(v, d, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    b = torch.randn(v, generator=g, dtype=torch.float64).to(dtype).requires_grad_() if bias else None
    target = torch.randint(0, v, shape, generator=g)
    if ignore_every:
        flat = target.view(-1)
        flat[::ignore_every] = -100
    return hidden, weight, b, target


def grads(out, inputs, upstream=None):
    inputs = [x for x in inputs if x is not None]
    if upstream is None:
        upstream = torch.ones_like(out)
    return torch.autograd.grad(out, inputs, upstream)


def assert_close(actual, expected, *, rtol, atol=None):
    atol = rtol if atol is None else atol
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)

