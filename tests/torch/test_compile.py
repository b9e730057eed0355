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


def test_runs_on_meta_device_so_no_host_sync_or_data_dependent_shape():
    """Meta tensors carry no data: any .item(), nonzero() or value-dependent shape would raise."""
    h = torch.empty(10, 4, device="meta", requires_grad=True)
    w = torch.empty(7, 4, device="meta", requires_grad=True)
    b = torch.empty(7, device="meta", requires_grad=True)
    y = torch.empty(10, dtype=torch.long, device="meta")
    cw = torch.empty(7, device="meta")
    for reduction in ("mean", "sum", "none"):
        loss, lse = xt.linear_cross_entropy(h, w, y, bias=b, class_weights=cw, label_smoothing=0.1, z_loss=0.1,
                                            softcap=2.0, reduction=reduction, chunk_size=3, return_lse=True)
        assert loss.device.type == lse.device.type == "meta"
        grads = torch.autograd.grad(loss.sum(), (h, w, b))
        assert [g.shape for g in grads] == [h.shape, w.shape, b.shape]
        z = torch.empty(10, 7, device="meta", requires_grad=True)
        out = xt.cross_entropy(z, y, class_weights=cw, label_smoothing=0.1, reduction=reduction)
        assert torch.autograd.grad(out.sum(), z)[0].shape == z.shape
