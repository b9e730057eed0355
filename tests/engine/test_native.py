"""The compiled engine kernels (src/native/engine/): the cases of issue 10, exact values, every variant.

Every check compares with exact values (tests/engine/_truth.py: extended precision)
or, for NaN/inf inputs, with the reference path's rules, on each instruction-set
variant compiled in that this CPU runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import xent
from xent import engine
from xent._lib import threads as _threads
from xent._lib.native import native

import _truth

nat = native()
pytestmark = pytest.mark.skipif(nat is None, reason="the native extension is not built")
ISAS = nat.usable_isas() if nat is not None else []
TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test on one compiled variant (the engine's table), then restore the best."""
    nat.engine.set_isa(request.param)
    yield request.param
    nat.engine.set_isa(ISAS[-1])


@pytest.fixture(autouse=True)
def engine_everywhere(monkeypatch):
    monkeypatch.setattr(engine, "MIN_ELEMENTS", 0)


def assert_values(got, want, dtype, *, floor=0.0):
    """Elementwise: |got - want| <= tol |want| (+ the dtype's tiny, + floor); the same infinities."""
    tol = TOL[np.dtype(dtype)]
    g = np.asarray(got, np.float64)
    w = np.asarray(want, np.float64)
    assert g.shape == w.shape
    np.testing.assert_array_equal(np.isinf(g), np.isinf(w))
    np.testing.assert_array_equal(g[np.isinf(w)], w[np.isinf(w)])
    f = np.isfinite(w)
    assert np.isfinite(g[f]).all()
    err = np.abs(g[f] - w[f]) - tol * np.abs(w[f]) - float(np.finfo(dtype).tiny) - floor
    rel = np.max(np.abs(g[f] - w[f]) / np.maximum(np.abs(w[f]), 1e-300), initial=0.0)
    assert err.max(initial=-1.0) <= 0, f"relative error {rel:.3g}"


def assert_rows(got, want, dtype, axis=-1, parts=None):
    """Row by row (class vectors): max |got - want| <= tol max |want|; all-zero rows exactly zero.

    ``parts`` (per row, from _truth's with_parts): the size of soft target weights, a few ulps of
    which a row may be off where the prediction meets the targets and the row cancels to ~0.
    """
    tol = TOL[np.dtype(dtype)]
    g = np.moveaxis(np.asarray(got, np.float64), axis, -1)
    w = np.moveaxis(np.asarray(want, np.float64), axis, -1)
    assert g.shape == w.shape
    g = g.reshape(-1, g.shape[-1])
    w = w.reshape(-1, w.shape[-1])
    scale = np.abs(w).max(axis=1)
    err = np.abs(g - w).max(axis=1)
    floor = 0.0 if parts is None else 4 * float(np.finfo(dtype).eps) * parts
    bad = err > tol * scale + float(np.finfo(dtype).tiny) + floor
    assert not bad.any(), f"{bad.sum()} rows off, worst relative error {np.max(err / np.maximum(scale, 1e-300)):.3g}"


def sparse(y, x, **kw):
    kw.setdefault("from_logits", True)
    return xent.sparse_categorical_cross_entropy(y, x, **kw)


# ---------------------------------------------------------------- the cases of issue 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gap", [12.0, 40.0])
def test_confident_rows_are_exact(isa, dtype, gap, rng):
    """Label logit 12 / 40 above the rest: loss ~ e^-gap and its gradient exact (not 0, not negative)."""
    x = rng.normal(0, 1, (64, 1000)).astype(dtype)
    y = rng.integers(0, 1000, 64)
    x[np.arange(64), y] = x.max(axis=1) + dtype(gap)
    for reduction in ("none", "mean", "sum"):
        loss, g = sparse(y, x, reduction=reduction, return_grad=True)
        want_l, want_g = _truth.sparse(y, x, axis=1, reduction=reduction)
        assert np.all(np.asarray(loss) > 0)
        assert_values(loss, want_l, dtype)
        assert_rows(g, want_g, dtype)
    # One class against one other: the loss is log1p(e^-gap) exactly.
    two = np.array([[gap, 0.0]], dtype)
    assert_values(sparse(np.array([0]), two, reduction="none"), [np.log1p(np.exp(-gap))], dtype)
    # log_softmax at the top class: -log1p(sum of the rest), not 0.
    ls = xent.log_softmax(x)
    assert_rows(ls, _truth.softmax_family(x, 1, "log_softmax"), dtype)
    assert np.all(ls[np.arange(64), y] < 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_class_is_exactly_zero(isa, dtype, rng):
    x = rng.normal(0, 30, (300, 1)).astype(dtype)
    y = np.zeros(300, int)
    for e in (0.0, 0.3):
        loss, g = sparse(y, x, reduction="none", label_smoothing=e, return_grad=True)
        np.testing.assert_array_equal(loss, 0)
        np.testing.assert_array_equal(g, 0)
        np.testing.assert_array_equal(xent.log_softmax(x), 0)
        np.testing.assert_array_equal(xent.softmax(x), 1)


def test_gradient_scale_does_not_underflow(isa, rng):
    """float32 logits 60-88 and "mean" over 1e6 rows: every gradient entry exact, every row sums to 0."""
    n = 1_000_000
    x = rng.uniform(60, 88, (n, 2)).astype(np.float32)
    x[:, 0] = 88.0
    y = rng.integers(0, 2, n)
    loss, g = sparse(y, x, return_grad=True)
    sub = slice(0, n, 997)  # the truth on a sample of rows (each row's gradient scale is 1/n)
    x64 = x.astype(np.float64)  # two classes, losses of order 1: float64 judges float32 here
    want_l = math.fsum(np.logaddexp(x64[:, 0], x64[:, 1]) - x64[np.arange(n), y]) / n
    assert_values(loss, want_l, np.float32)
    _, want_g = _truth.sparse(y[sub], x[sub], axis=1, reduction="sum")
    assert_rows(g[sub] * n, want_g, np.float32)
    assert np.all(np.abs(g.sum(axis=1)) <= 1e-6 * np.abs(g).max(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_class_with_zero_weight_and_smoothing(isa, dtype, rng):
    """A class masked by a -inf logit with class weight 0 contributes 0 (reference 2.3234), every layout."""
    c = 10
    cw = np.ones(c, dtype)
    cw[3] = 0.0
    base = rng.normal(0, 1, (6, c, 4)).astype(dtype)
    base[:, 3, :] = -np.inf
    layouts = [(base[..., 0].copy(), 1), (base, 1), (base[:, :, ::2], 1), (np.moveaxis(base, 1, 0), 0)]
    big = base[..., 0].copy()
    big[0, 0] = 80.0 if dtype == np.float32 else 700.0  # one row whose plain sum of exp overflows
    layouts.append((big, 1))
    for x, axis in layouts:
        ex = np.moveaxis(x, axis, -1).shape[:-1]
        y = rng.integers(0, c, ex)
        y[y == 3] = 4
        kw = dict(axis=axis, class_weights=cw, label_smoothing=0.2, reduction="none")
        loss, g = sparse(y, x, return_grad=True, **kw)
        want_l, want_g = _truth.sparse(y, x, **{**kw, "axis": axis})
        assert np.isfinite(loss).all()
        assert_values(loss, want_l, dtype)
        assert_rows(g, want_g, dtype, axis=axis)
        with engine.use_engine("reference"):
            ref = sparse(y, x, **kw)
        np.testing.assert_allclose(loss, ref, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_smoothing_with_target_on_minus_inf_is_inf(isa, dtype, rng):
    """label_smoothing=1 puts weight 1/C on a -inf logit: +inf like the reference (not NaN)."""
    x = rng.normal(0, 1, (5, 8)).astype(dtype)
    x[:, 2] = -np.inf
    y = np.array([2, 0, 1, 2, 5])
    loss, g = sparse(y, x, label_smoothing=1.0, reduction="none", return_grad=True)
    assert np.all(np.isposinf(loss))
    assert np.isfinite(g).all()
    with engine.use_engine("reference"):
        ref_l, ref_g = sparse(y, x, label_smoothing=1.0, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, ref_l)
    np.testing.assert_allclose(g, ref_g, rtol=1e-5, atol=1e-7)
    # The target on the -inf logit without smoothing: +inf too.
    assert np.isposinf(sparse(np.array([2]), x[:1], reduction="sum"))
    assert np.isposinf(xent.categorical_cross_entropy(np.eye(8, dtype=dtype)[[2]], x[:1], from_logits=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_rows_follow_the_reference(isa, dtype, rng):
    x = rng.normal(0, 2, (7, 40)).astype(dtype)
    x[1, 3] = np.nan
    x[2, 4] = np.inf
    x[3, :] = -np.inf
    x[4, 5] = np.inf
    x[4, 6] = np.inf
    x[5, :] = -np.inf
    x[5, 9] = 1.0  # masked classes: a normal row
    y = np.array([0, 1, 4, 3, 5, 9, 6])
    t = xent.softmax(rng.normal(size=x.shape)).astype(dtype)
    calls = [
        lambda: sparse(y, x, reduction="none", return_grad=True),
        lambda: sparse(y, x, reduction="none", label_smoothing=0.1, return_grad=True),
        lambda: xent.categorical_cross_entropy(t, x, from_logits=True, reduction="none", return_grad=True),
        lambda: (xent.logsumexp(x), xent.log_softmax(x), xent.softmax(x)),
    ]
    for call in calls:
        fast = call()
        with engine.use_engine("reference"), np.errstate(all="ignore"):
            slow = call()
        for a, b in zip(fast, slow):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_array_equal(np.isinf(a), np.isinf(b))
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, equal_nan=True)
    z = rng.normal(0, 3, (7, 40)).astype(dtype)
    z[0, 0], z[1, 1], z[2, 2] = np.inf, -np.inf, np.nan
    b = (rng.uniform(size=z.shape) > 0.5).astype(dtype)
    fast = xent.binary_cross_entropy(b, z, from_logits=True, reduction="none", return_grad=True)
    with engine.use_engine("reference"), np.errstate(all="ignore"):
        slow = xent.binary_cross_entropy(b, z, from_logits=True, reduction="none", return_grad=True)
    for a, r in zip(fast, slow):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-7, equal_nan=True)


# ---------------------------------------------------------------- the engine as a library


def test_thread_count_changes_no_bit(rng, monkeypatch):
    x = rng.normal(0, 3, (3000, 300)).astype(np.float32)
    y = rng.integers(0, 300, 3000)
    z = rng.normal(size=(200_000,)).astype(np.float32)
    b = (z > 0.3).astype(np.float32)
    outs = []
    for n in (1, 2, 3, 5):
        monkeypatch.setitem(_threads._state, "n", n)
        outs.append((
            sparse(y, x, return_grad=True, label_smoothing=0.1),
            xent.categorical_cross_entropy(xent.softmax(x), x, from_logits=True, return_grad=True),
            xent.binary_cross_entropy(b, z, from_logits=True, return_grad=True),
            xent.logsumexp(x),
        ))
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other):
            for u, v in zip(a if isinstance(a, tuple) else (a,), b_ if isinstance(b_, tuple) else (b_,)):
                np.testing.assert_array_equal(u, v)


def test_gradient_into_a_callers_buffer(rng):
    """grad_out: the kernels write into it (no other N x C array); a torch tensor's .numpy() view works."""
    x = rng.normal(size=(2000, 500)).astype(np.float32)
    y = rng.integers(0, 500, 2000)
    buf = np.empty_like(x)
    engine.sparse_categorical_cross_entropy(x, y, axis=1, return_grad=True, grad_out=buf)  # warm-up
    tracemalloc.start()
    loss, g = engine.sparse_categorical_cross_entropy(x, y, axis=1, return_grad=True, grad_out=buf)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert g is buf and peak < 64 * 1024
    _, want = _truth.sparse(y, x, axis=1)
    assert_rows(buf, want, np.float32)
    torch = pytest.importorskip("torch")
    tg = torch.empty(x.shape, dtype=torch.float32)
    engine.sparse_categorical_cross_entropy(x, y, axis=1, return_grad=True, grad_out=tg.numpy())
    np.testing.assert_array_equal(tg.numpy(), buf)
    with pytest.raises(ValueError, match="grad_out"):
        engine.sparse_categorical_cross_entropy(x, y, axis=1, return_grad=True, grad_out=buf[:, :10])
    with pytest.raises(ValueError, match="grad_out"):
        engine.sparse_categorical_cross_entropy(x, y, axis=1, return_grad=True, grad_out=buf.astype(np.float64))
    out = np.empty_like(x)
    assert engine.softmax(x, 1, out=out) is out


# Run in a fresh interpreter: the only allocations traced there are the code under test's (in this
# process pytest, xdist's I/O thread or another test's leftovers could allocate during the call).
_PEAK_SCRIPT = """
import json, tracemalloc
import numpy as np
import xent

rng = np.random.default_rng(0)
x = rng.normal(size=(100_000, 10)).astype(np.float32)
y = rng.integers(0, 10, 100_000)
z = rng.normal(size=1_000_000).astype(np.float32)
t = (z > 0).astype(np.float32)
base = rng.normal(0, 3, (400, 64)).astype(np.float32)
y400 = rng.integers(0, 32, 400)
sparse = xent.sparse_categorical_cross_entropy
calls = {
    "sparse mean": lambda: sparse(y, x, from_logits=True),
    "sparse sum": lambda: sparse(y, x, from_logits=True, reduction="sum"),
    "binary mean": lambda: xent.binary_cross_entropy(t, z, from_logits=True),
    "strided view": lambda: sparse(y400, base[:, ::2], from_logits=True, axis=1),
    "reversed view": lambda: sparse(y400, base[:, ::-2], from_logits=True, axis=1),
    "transposed view": lambda: sparse(y400, base.T[::2], from_logits=True, axis=0),
}
peaks = {}
for name, call in calls.items():
    call()  # loads the kernels and starts the thread pool: one-time costs, not per call
    runs = []
    for _ in range(3):
        tracemalloc.start()
        call()
        runs.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    peaks[name] = min(runs)  # what every call allocates; a one-off (a cache filling up) is not per call
print(json.dumps(peaks))
"""


def test_no_per_example_memory_and_views_are_not_copied():
    """Mean/sum reduce per task inside the kernels and labels are not copied: NumPy allocates nothing per
    example (one per-example array would be 400 KB or 4 MB; the bound is 64 KiB). Strided, transposed and
    reversed views reach the kernels as they are (a copy of the view would be 51 KB; the bound is 12.8 KB)."""
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peaks = json.loads(proc.stdout)
    assert len(peaks) == 6, peaks
    for name, peak in peaks.items():
        bound = 64 * 1024 if name in ("sparse mean", "sparse sum", "binary mean") else 400 * 32 * 4 // 4
        assert peak < bound, (name, peak, bound)


def test_views_give_exact_values(rng):
    base = rng.normal(0, 3, (400, 64)).astype(np.float32)
    y = rng.integers(0, 32, 400)
    for x, axis in [(base[:, ::2], 1), (base[:, ::-2], 1), (base.T[::2], 0)]:
        assert_values(sparse(y, x, axis=axis), _truth.sparse(y, x, axis=axis)[0], np.float32)


def test_isa_cap_from_the_environment():
    """XENT_ISA=baseline caps the variant at import (the CI runs each variant this way too)."""
    code = "import xent._native as n; print(n.isa(), n.engine.isa())"
    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "XENT_ISA": "baseline"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["baseline", "baseline"]
    with pytest.raises(ValueError, match="isa"):
        nat.engine.set_isa("sse9")


def test_bad_calls_raise_instead_of_reading_out_of_bounds(rng):
    x = rng.normal(size=(4, 5, 1)).astype(np.float32)
    y = np.zeros((4, 1), np.int64)
    with pytest.raises(ValueError, match="labels"):
        nat.engine.sparse(x, y[:3], None, None, None, 0.0, 1.0, None, None, 1)
    with pytest.raises(ValueError, match="int64"):
        nat.engine.sparse(x, y.astype(np.int32), None, None, None, 0.0, 1.0, None, None, 1)
    with pytest.raises(ValueError, match="class_weights"):
        nat.engine.sparse(x, y, np.ones(4, np.float32), None, None, 0.0, 1.0, None, None, 1)
    # Labels outside [0, C) (unvalidated callers) have no label term, as the reference's all-zero one-hot row.
    big = np.full((4, 1), 99, np.int64)
    assert nat.engine.sparse(x, big, None, None, None, 0.0, 1.0, None, None, 1) == 0.0


def _sparse_sum(seed: int) -> float:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 100)).astype(np.float32)
    y = rng.integers(0, 100, 3000)
    loss, g = engine.sparse_categorical_cross_entropy(x, y, axis=1, reduction="sum", return_grad=True)
    return float(loss) + float(np.abs(g).sum())


def test_concurrent_callers_and_a_forked_child(monkeypatch):
    """Python threads calling at once queue on the pool and get their own results; a forked child
    (multiprocessing, Dask's forkserver) starts a pool of its own instead of waiting on the parent's."""
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setitem(_threads._state, "n", 2)
    want = [_sparse_sum(s) for s in range(6)]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(_sparse_sum, range(6)))
    assert got == want
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_sparse_sum, (3,)) == want[3]


def test_without_the_extension_numpy_kernels_run_and_say_so_once():
    """A build without xent._native: the NumPy kernels take over, with one RuntimeWarning naming the rebuild."""
    code = """
import sys, warnings
sys.modules["xent._native"] = None  # as if the extension were missing
import numpy as np, xent
from xent import engine
rng = np.random.default_rng(0)
x = rng.normal(size=(200, 300)); y = rng.integers(0, 300, 200)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    a = xent.sparse_categorical_cross_entropy(y, x, from_logits=True, return_grad=True)
    b = xent.log_softmax(x)
with engine.use_engine("reference"):
    ra = xent.sparse_categorical_cross_entropy(y, x, from_logits=True, return_grad=True)
assert abs(a[0] - ra[0]) <= 1e-12 * abs(ra[0]) and np.allclose(a[1], ra[1], rtol=1e-12, atol=1e-15)
msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
assert len(msgs) == 1 and "pip install" in msgs[0], msgs
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
