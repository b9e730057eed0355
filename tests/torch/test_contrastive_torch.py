"""xent.torch.siglip_loss / clip_loss in one process: chunked results equal the core's float64 formulas and
open_clip's losses; the chunks never hold more than chunk_size x N logits; meta, compile, modules, errors.
The distributed forms are in test_contrastive_dist.py (a file name apart from tests/losses/test_contrastive.py:
the test directories are not packages)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import xent
import xent.torch as xt

from xtorch_helpers import assert_close


def _pairs(n, d, *, dtype=torch.float64, seed=0, confident=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    y = torch.nn.functional.normalize(x + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    if confident:
        y = x.clone()  # every diagonal logit is the largest of its row and column
    return x.to(dtype).requires_grad_(), y.to(dtype).requires_grad_()


def _run(name, x, y, s, b, **kw):
    """(loss, grads of x, y, s, b) of xent.torch's loss (b unused by CLIP)."""
    params = [s] if name == "clip" else [s, b]
    loss = xt.clip_loss(x, y, s, **kw) if name == "clip" else xt.siglip_loss(x, y, s, b, **kw)
    return loss, torch.autograd.grad(loss, [x, y, *params])


def _core(name, x, y, s, b, **kw):
    """The core (array API) function on float64 NumPy copies, with its analytic gradients."""
    a, c = x.detach().double().numpy(), y.detach().double().numpy()
    if name == "clip":
        return xent.clip_loss(a, c, scale=float(s.detach()) if torch.is_tensor(s) else s, return_grad=True, **kw)
    return xent.siglip_loss(a, c, scale=float(s.detach()) if torch.is_tensor(s) else s,
                             bias=float(b.detach()) if torch.is_tensor(b) else b, return_grad=True)


def _scalars(dtype=torch.float64, s=7.0, b=-4.0):
    return (torch.tensor(s, dtype=dtype, requires_grad=True), torch.tensor(b, dtype=dtype, requires_grad=True))


@pytest.mark.parametrize("name", ["siglip", "clip"])
@pytest.mark.parametrize("chunk_size", [None, 1, 5, 16, 64])
def test_chunked_equals_float64_formulas(name, chunk_size):
    """Every chunk size (uneven splits of N = 37 included) gives the core's loss and gradients."""
    x, y = _pairs(37, 9)
    s, b = _scalars()
    loss, grads = _run(name, x, y, s, b, chunk_size=chunk_size)
    ref, ref_grads = _core(name, x, y, s, b)
    assert_close(loss, torch.tensor(ref), rtol=1e-12, atol=1e-14)
    for g, r in zip(grads, ref_grads):
        assert_close(g, torch.as_tensor(r), rtol=1e-11, atol=1e-14)


def test_clip_label_smoothing_and_confident_rows():
    x, y = _pairs(20, 6, confident=True)
    s, _ = _scalars(s=30.0)
    for e in (0.0, 0.1, 1.0):
        loss, grads = _run("clip", x, y, s, None, chunk_size=7, label_smoothing=e)
        ref, ref_grads = _core("clip", x, y, s, None, label_smoothing=e)
        assert_close(loss, torch.tensor(ref), rtol=1e-11, atol=1e-14)
        for g, r in zip(grads, ref_grads):
            assert_close(g, torch.as_tensor(r), rtol=1e-10, atol=1e-14)


def test_siglip_confident_pairs_keep_their_digits():
    """Margins of about +-30: every term is ~e^-30, which log(1 + exp(-m)) in float64 would round badly."""
    x = torch.eye(6, 8, dtype=torch.float64)
    x[:, 7] = 0.01 * torch.arange(6)  # off-diagonal dots of at most 0.0025
    x.requires_grad_()
    y = x.detach().clone().requires_grad_()
    s, b = _scalars(s=60.0, b=-30.0)  # diagonal logits ~ +30, off-diagonal ones ~ -30
    loss, grads = _run("siglip", x, y, s, b, chunk_size=4)
    ref, ref_grads = _core("siglip", x, y, s, b)
    assert 0 < ref < 1e-11
    assert_close(loss, torch.tensor(ref), rtol=1e-12, atol=0)
    for g, r in zip(grads, ref_grads):
        assert_close(g, torch.as_tensor(r), rtol=1e-10, atol=1e-40)


@pytest.mark.parametrize("name", ["siglip", "clip"])
def test_float32_and_bfloat16_close_to_float64(name):
    x64, y64 = _pairs(50, 16)
    ref, _ = _core(name, x64, y64, 10.0, -5.0)
    for dtype, rtol in ((torch.float32, 2e-6), (torch.bfloat16, 2e-2)):
        x, y = x64.detach().to(dtype).requires_grad_(), y64.detach().to(dtype).requires_grad_()
        s, b = _scalars(torch.float32, 10.0, -5.0)
        loss, grads = _run(name, x, y, s, b, chunk_size=8)
        assert loss.dtype == torch.float32 and grads[0].dtype == dtype and grads[2].dtype == torch.float32
        # Against the float64 formulas on the same (rounded) inputs: only float32 arithmetic differs.
        ref_d, ref_grads_d = _core(name, x, y, 10.0, -5.0)
        assert abs(loss.item() - ref_d) <= rtol * abs(ref_d)
        for g, r in zip(grads, ref_grads_d):
            r = torch.as_tensor(r)
            scale = r.abs().max().item()
            assert (g.double() - r).abs().max().item() <= (2e-6 if dtype == torch.float32 else 2e-2) * scale
        if dtype == torch.float32:
            assert abs(loss.item() - ref) <= 1e-5 * abs(ref)


def _open_clip_loss():
    """open_clip's loss.py loaded from its file: `import open_clip` pulls in torchvision and timm."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        pytest.skip("open_clip_torch is not installed (pip install --no-deps open_clip_torch==3.3.0; CI installs it)")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "loss.py")
    mod_spec = importlib.util.spec_from_file_location("_open_clip_loss", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_open_clip_losses(dtype):
    oc = _open_clip_loss()
    x, y = _pairs(45, 12, dtype=dtype)
    rtol = 1e-12 if dtype == torch.float64 else 2e-6
    for name, peer in (("siglip", oc.SigLipLoss()), ("clip", oc.ClipLoss())):
        s, b = _scalars(dtype, 10.0, -10.0)
        loss, grads = _run(name, x, y, s, b, chunk_size=8)
        s2, b2 = _scalars(dtype, 10.0, -10.0)
        ref = peer(x, y, s2, b2) if name == "siglip" else peer(x, y, s2)
        ref_grads = torch.autograd.grad(ref, [x, y, s2] + ([b2] if name == "siglip" else []))
        assert_close(loss, ref.to(loss.dtype), rtol=rtol, atol=1e-6 if dtype == torch.float32 else 1e-14)
        for g, r in zip(grads, ref_grads):
            assert_close(g, r.to(g.dtype), rtol=10 * rtol, atol=10 * rtol * r.abs().max().item())


class _Sizes(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("name", ["siglip", "clip"])
def test_chunks_never_hold_more_than_chunk_size_x_n_logits(name):
    """Forward + backward: no operator returns more than chunk_size x N elements (N x N would be 16x more)."""
    n, d, chunk = 128, 4, 8
    x, y = _pairs(n, d)
    s, b = _scalars()
    with _Sizes() as sizes:
        _run(name, x, y, s, b, chunk_size=chunk)
    assert sizes.largest <= chunk * n
    with _Sizes() as unchunked:  # the check can fail: the core builds the whole matrix
        (xent.clip_loss if name == "clip" else xent.siglip_loss)(x, y, scale=s).backward()
    assert unchunked.largest == n * n


def test_runs_on_meta_device_so_no_host_sync():
    x = torch.empty(10, 4, device="meta", requires_grad=True)
    y = torch.empty(10, 4, device="meta", requires_grad=True)
    s = torch.empty((), device="meta", requires_grad=True)
    b = torch.empty((), device="meta", requires_grad=True)
    for loss in (xt.siglip_loss(x, y, s, b, chunk_size=3), xt.clip_loss(x, y, s, chunk_size=3, label_smoothing=0.1)):
        assert loss.device.type == "meta" and loss.shape == ()
        grads = torch.autograd.grad(loss, (x, y, s))
        assert [g.shape for g in grads] == [x.shape, y.shape, s.shape]


def test_compiled_matches_eager():
    torch._dynamo.reset()
    x, y = _pairs(24, 8, dtype=torch.float32)
    s, b = _scalars(torch.float32, 5.0, -2.0)

    def f(x, y, s, b):
        return xt.siglip_loss(x, y, s, b, chunk_size=7) + xt.clip_loss(x, y, s, chunk_size=5, label_smoothing=0.1)

    # aot_eager: dynamo + AOT autograd trace the whole graph (fullgraph: no break, no host sync) without
    # inductor's minutes of C++ code generation on a CPU machine.
    out_c = torch.compile(f, fullgraph=True, dynamic=False, backend="aot_eager")(x, y, s, b)
    g_c = torch.autograd.grad(out_c, (x, y, s, b))
    out_e = f(x, y, s, b)
    g_e = torch.autograd.grad(out_e, (x, y, s, b))
    assert_close(out_c, out_e, rtol=1e-5, atol=1e-6)
    for a, e in zip(g_c, g_e):
        assert_close(a, e, rtol=1e-5, atol=1e-6)


def test_gradients_only_where_asked_and_a_second_backward():
    x, y = _pairs(9, 3)
    s = torch.tensor(3.0, dtype=torch.float64)  # fixed scale: no grad
    loss = xt.siglip_loss(x, y.detach(), s, 0.5, chunk_size=4)
    (gx,) = torch.autograd.grad(loss, x, retain_graph=True)
    (gx2,) = torch.autograd.grad(loss, x)  # the forward's gradients are not scaled in place
    assert_close(gx, gx2, rtol=0, atol=0)
    with torch.no_grad():
        assert not xt.clip_loss(x, y, 2.0).requires_grad
    up = torch.tensor(2.5, dtype=torch.float64)
    for name in ("siglip", "clip"):
        x, y = _pairs(9, 3)
        s, b = _scalars()
        loss = xt.clip_loss(x, y, s) if name == "clip" else xt.siglip_loss(x, y, s, b)
        g = torch.autograd.grad(loss, (x, y, s), up, retain_graph=True)
        ref = torch.autograd.grad(loss, (x, y, s))
        for a, r in zip(g, ref):
            assert_close(a, 2.5 * r, rtol=1e-12, atol=0)


def test_modules_hold_learnable_temperature_and_bias():
    x, y = _pairs(12, 5, dtype=torch.float32)
    m = xt.SigLIPLoss(chunk_size=4)
    assert {n for n, _ in m.named_parameters()} == {"log_scale", "bias"}
    assert_close(m(x, y), xt.siglip_loss(x, y, torch.tensor(10.0), -10.0), rtol=1e-6)
    m(x, y).backward()
    assert m.log_scale.grad is not None and m.bias.grad is not None
    c = xt.CLIPLoss(init_scale=200.0, label_smoothing=0.1)  # above max_scale=100: clipped, zero gradient
    assert_close(c(x, y), xt.clip_loss(x, y, 100.0, label_smoothing=0.1), rtol=1e-6)
    c(x, y).backward()
    assert c.log_scale.grad.item() == 0.0
    fixed = xt.CLIPLoss(learnable=False, max_scale=None)
    assert not list(fixed.parameters()) and "log_scale" in dict(fixed.named_buffers())
    assert "label_smoothing=0.1" in repr(c)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda x, y: xt.siglip_loss(x, y[:, :3], 1.0, 0.0), ValueError, r"`y` must have d = 4 columns"),
        (lambda x, y: xt.clip_loss(x, y[:5], 1.0), ValueError, r"`y` must have shape \(6, 4\)"),
        (lambda x, y: xt.clip_loss(x[:0], y[:0], 1.0), ValueError, r"at least one pair \(N >= 1\), got N = 0"),
        (lambda x, y: xt.clip_loss(x[0], y[0], 1.0), ValueError, r"`x` must have shape \(N, d\)"),
        (lambda x, y: xt.clip_loss(x, y, 0.0), ValueError, r"`scale` must be a finite number > 0"),
        (lambda x, y: xt.siglip_loss(x, y, torch.tensor(-2.0), 0.0), ValueError, r"`scale` must be a finite number > 0"),
        (lambda x, y: xt.siglip_loss(x, y, 1.0, float("nan")), ValueError, r"`bias` must be a finite number"),
        (lambda x, y: xt.siglip_loss(x, y, torch.ones(2), 0.0), ValueError, r"`scale` must be a real number or a 0-d"),
        (lambda x, y: xt.siglip_loss(x, y, "1", 0.0), TypeError, r"`scale` must be a real number"),
        (lambda x, y: xt.clip_loss(x, y.double(), 1.0), TypeError, r"`y` must have the dtype of `x`"),
        (lambda x, y: xt.clip_loss(x.long(), y, 1.0), TypeError, r"`x` must be a floating tensor"),
        (lambda x, y: xt.clip_loss(x.numpy(), y, 1.0), TypeError, r"`x` must be a torch.Tensor"),
        (lambda x, y: xt.clip_loss(x, y, 1.0, chunk_size=0), ValueError, r"`chunk_size` must be None or an integer"),
        (lambda x, y: xt.clip_loss(x, y, 1.0, label_smoothing=2.0), ValueError, r"`label_smoothing` must be in"),
        (lambda x, y: xt.SigLIPLoss(init_scale=0.0), ValueError, r"`init_scale` must be a finite number > 0"),
        (lambda x, y: xt.CLIPLoss(max_scale=-1.0), ValueError, r"`max_scale` must be a finite number > 0"),
    ],
)
def test_bad_input_names_the_argument(call, exc, match):
    x, y = torch.randn(6, 4), torch.randn(6, 4)
    with pytest.raises(exc, match=match):
        call(x, y)


def test_group_without_torch_distributed_is_a_clear_error():
    with pytest.raises(ValueError, match=r"`group` needs an initialised torch.distributed"):
        xt.clip_loss(torch.randn(3, 2), torch.randn(3, 2), 1.0, group=object())


def test_core_and_face_agree_on_the_seed_identity():
    """Seed 003: softmax CE of [z1, z2] with label 0 is BCE of sigmoid(z1 - z2): CLIP with N = 2 on 1-d
    embeddings is that, per row and column, and its N = 1 case is 0."""
    x = torch.tensor([[1.0], [-0.5]], dtype=torch.float64)
    y = torch.tensor([[2.0], [0.3]], dtype=torch.float64)
    s = 1.5
    logits = s * x @ y.T
    rows = [xent.binary_cross_entropy(1.0, logits[i, i] - logits[i, 1 - i], from_logits=True) for i in range(2)]
    cols = [xent.binary_cross_entropy(1.0, logits[j, j] - logits[1 - j, j], from_logits=True) for j in range(2)]
    want = (sum(rows) + sum(cols)) / 4
    assert_close(xt.clip_loss(x, y, s), want, rtol=1e-14, atol=0)
    assert xt.clip_loss(x[:1], y[:1], s).item() == 0.0
    assert np.isclose(float(xent.clip_loss(x.numpy(), y.numpy(), scale=s)), want.item(), rtol=1e-14)
