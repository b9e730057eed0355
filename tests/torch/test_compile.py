"""A run under torch.compile(fullgraph=True) matches eager: no graph breaks, no host syncs."""

from __future__ import annotations

import torch

import xent.torch as xt
from xtorch_helpers import assert_close, make_problem


def test_compiled_matches_eager_mean_and_none_with_ignore_index():
    torch._dynamo.reset()
    hidden, weight, b, target = make_problem(n=24, d=8, v=19, dtype=torch.float32, ignore_every=3)
    w = torch.rand(19) + 0.5
    up = torch.randn(24)

    def f(h, W, bb, y):
        mean = xt.linear_cross_entropy(h, W, y, bias=bb, class_weights=w, label_smoothing=0.1, z_loss=1e-3,
                                       softcap=5.0, chunk_size=16)
        none = xt.linear_cross_entropy(h, W, y, bias=bb, reduction="none", chunk_size=16)
        logits = xt.cross_entropy(h @ W.T, y, label_smoothing=0.2)
        return mean + (none * up).sum() + logits

    compiled = torch.compile(f, fullgraph=True, dynamic=False)
    out_c = compiled(hidden, weight, b, target)
    g_c = torch.autograd.grad(out_c, (hidden, weight, b))
    out_e = f(hidden, weight, b, target)
    g_e = torch.autograd.grad(out_e, (hidden, weight, b))
    assert_close(out_c, out_e, rtol=1e-5, atol=1e-6)
    for a, e in zip(g_c, g_e):
        assert_close(a, e, rtol=1e-5, atol=1e-6)
    # all ignored under compile: 0, not NaN (the mean's guard is a tensor op, not a Python branch)
    all_ignored = torch.full_like(target, -100)
    out = compiled(hidden, weight, b, all_ignored)
    assert out.item() == 0.0
