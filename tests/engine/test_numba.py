"""The fused numba kernels (xent-ml[fast]) against plain float64 NumPy references, and their fallbacks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import _engine_ref as ref
from _engine_ref import assert_close
from xent.engine import _fused

DTYPES = [np.float32, np.float64]
# 1 row, 1 class, fewer classes than one SIMD chunk, a chunk plus a tail, 3-d batch.
SHAPES = [(1, 5), (6, 1), (9, 40), (7, 33001), (3, 4, 600)]


def test_numba_is_used_here():
    assert _fused.numba_kernels() is not None, "tests run with the xent-ml[fast] extra (numba) installed"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["logsumexp", "log_softmax", "softmax"])
def test_softmax_family(kind, dtype, rng):
    for shape in SHAPES:
        x = rng.normal(0, 3, shape).astype(dtype)
        got = _fused.fused_softmax_family(x, x.ndim - 1, kind)
        ls = ref.log_softmax(x, -1)
        want = {"logsumexp": np.logaddexp.reduce(x.astype(np.float64), axis=-1), "log_softmax": ls,
                "softmax": np.exp(ls)}[kind]
        assert got.dtype == dtype
        floor = float(np.abs(x).max()) + np.log(shape[-1]) if kind != "softmax" else 0.0
        assert_close(got, want, dtype, floor=floor)


def test_declines_other_layouts(rng):
    x = rng.normal(size=(20, 30))
    assert _fused.fused_softmax_family(x, 0, "softmax") is NotImplemented
    assert _fused.fused_softmax_family(x[:, ::2], 1, "softmax") is NotImplemented


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_every_option(dtype, rng):
    options = itertools.product(["mean", "sum", "none"], [0.0, 0.2], [False, True], [False, True], [None, -100])
    cases = []
    for shape in SHAPES:
        x = rng.normal(0, 3, shape).astype(dtype)
        y = rng.integers(0, shape[-1], shape[:-1])
        if y.size > 1:
            y.flat[::3] = -100
        cases.append((x, y, rng.uniform(0.2, 2, shape[-1]).astype(dtype), rng.uniform(0, 2, y.shape).astype(dtype)))
    for reduction, e, use_cw, use_sw, ignore in options:
        for x, y, cw, sw in cases:
            if ignore is None:
                y = np.where(y < 0, 0, y)
            opts = dict(class_weights=cw if use_cw else None, weights=sw if use_sw else None, label_smoothing=e,
                        reduction=reduction)
            want_l, want_g = ref.sparse(y, x, axis=x.ndim - 1, ignore_index=ignore, **opts)
            n = y.size
            for grad in (False, True):
                loss, g = _fused.fused_sparse_ce(x, y, axis=x.ndim - 1, ignore_index=ignore, return_grad=grad, **opts)
                assert loss.dtype == dtype
                assert_close(loss, want_l, dtype, floor=float(np.abs(x).max()) * (2.0 * n if reduction == "sum" else 1))
                if grad:
                    assert g.dtype == dtype and g.shape == x.shape
                    assert_close(g, want_g, dtype, floor=1.0 / n if reduction == "mean" else 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flagged_rows_take_the_shifted_numpy_path(dtype, rng):
    x = rng.normal(size=(6, 700)).astype(dtype)
    x[0] += 1e4  # sum of exp overflows
    x[1] -= 1e4  # underflows
    x[2, 5] = 95.0  # one float32 overflow
    x[3, :] = -np.inf
    x[3, 7] = 0.0  # masked classes
    y = np.array([1, 2, 5, 7, 0, 9])
    loss, g = _fused.fused_sparse_ce(
        x, y, axis=1, class_weights=None, weights=None, ignore_index=None, label_smoothing=0.0,
        reduction="mean", return_grad=True,
    )
    want_l, want_g = ref.sparse(y, x, axis=1)
    assert_close(loss, want_l, dtype, floor=1e4)
    assert_close(g, want_g, dtype, floor=1.0 / 6)
    for kind in ("logsumexp", "softmax"):
        got = _fused.fused_softmax_family(x, 1, kind)
        ls = ref.log_softmax(x, 1)
        want = np.logaddexp.reduce(x.astype(np.float64), axis=1) if kind == "logsumexp" else np.exp(ls)
        assert_close(got, want, dtype)


def test_nan_and_inf_rows_match_the_reference(rng):
    from xent import engine, sparse_categorical_cross_entropy

    x = rng.normal(size=(5, 40))
    x[1, 3] = np.nan
    x[2, 4] = np.inf
    y = np.array([0, 1, 2, 3, 4])
    fast = _fused.fused_sparse_ce(
        x, y, axis=1, class_weights=None, weights=None, ignore_index=None, label_smoothing=0.0,
        reduction="none", return_grad=True,
    )
    with engine.use_engine("reference"):
        slow = sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none", return_grad=True)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-12, atol=1e-15, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_every_option(dtype, rng):
    for shape in [(1,), (7, 33), (3, 4, 130)]:
        z = rng.normal(0, 4, shape).astype(dtype)
        z.flat[::7] *= 40  # large |z|
        y = (rng.uniform(size=shape) > 0.5).astype(dtype)
        y.flat[::5] = 0.3
        pw = rng.uniform(0.5, 3, shape[-1]).astype(dtype)
        sw = rng.uniform(0, 2, shape).astype(dtype)
        sw.flat[::4] = 0.0
        for reduction, e, pos, wts in itertools.product(["mean", "sum", "none"], [0.0, 0.2],
                                                         [None, "vector", "scalar"], [None, "full", "vector"]):
            pwv = {None: None, "vector": pw, "scalar": np.asarray(1.7, dtype)}[pos]
            swv = {None: None, "full": sw, "vector": sw.reshape(-1)[: shape[-1]]}[wts]
            opts = dict(label_smoothing=e, reduction=reduction)
            want_l, want_g = ref.binary(y, z, weights=swv, pos_weight=pwv, **opts)
            for grad in (False, True):
                loss, g = _fused.fused_binary_ce(
                    y, z, weights=None if swv is None else np.broadcast_to(swv, shape),
                    pos_weight=None if pwv is None else np.broadcast_to(pwv, shape), return_grad=grad, **opts,
                )
                assert loss.dtype == dtype
                assert_close(loss, want_l, dtype)
                if grad:
                    assert_close(g, want_g, dtype)


def test_binary_non_finite_logits_decline_to_numpy(rng):
    z = rng.normal(size=(4, 50))
    z[0, 0] = np.inf
    y = (rng.uniform(size=z.shape) > 0.5).astype(np.float64)
    out = _fused.fused_binary_ce(y, z, weights=None, pos_weight=None, label_smoothing=0.0, reduction="sum",
                                 return_grad=False)
    assert out is NotImplemented


@pytest.mark.parametrize("dtype", DTYPES)
def test_flagged_rows_few_classes_every_reduction(dtype, rng):
    # Few classes take the row-block kernel; flagged rows there are skipped in the block sums and redone.
    x = rng.normal(0, 3, (700, 6)).astype(dtype)  # several row blocks
    x[3] += 1e4  # overflows
    x[300] -= 1e4  # underflows
    x[650, :] = -np.inf
    x[650, 2] = 0.0  # masked classes
    y = rng.integers(0, 6, 700)
    y[650] = 2
    y[::7] = -100
    sw = rng.uniform(0, 2, 700).astype(dtype)
    cw = rng.uniform(0.2, 2, 6).astype(dtype)
    for reduction, e, use_w in itertools.product(["mean", "sum", "none"], [0.0, 0.1], [False, True]):
        opts = dict(class_weights=cw if use_w else None, weights=sw if use_w else None, label_smoothing=e,
                    reduction=reduction)
        want_l, want_g = ref.sparse(y, x, axis=1, ignore_index=-100, **opts)
        for grad in (False, True):
            loss, g = _fused.fused_sparse_ce(x, y, axis=1, ignore_index=-100, return_grad=grad, **opts)
            assert loss.dtype == dtype
            assert_close(loss, want_l, dtype, floor=1e4 * (700 if reduction == "sum" else 1))
            if grad:
                assert_close(g, want_g, dtype, floor=1.0 / 700 if reduction == "mean" else 1.0)


# Run in a fresh interpreter: the only allocations traced there are the code under test's (in this
# process pytest, xdist's I/O thread or another test's leftovers could allocate during the call).
_PEAK_SCRIPT = """
import json, tracemalloc
import numpy as np
from xent import binary_cross_entropy, sparse_categorical_cross_entropy

rng = np.random.default_rng(0)
x = rng.normal(size=(100_000, 10)).astype(np.float32)
y = rng.integers(0, 10, 100_000)
z = rng.normal(size=1_000_000).astype(np.float32)
t = (z > 0).astype(np.float32)
calls = {
    "sparse mean": lambda: sparse_categorical_cross_entropy(y, x, from_logits=True),
    "sparse sum": lambda: sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="sum"),
    "binary mean": lambda: binary_cross_entropy(t, z, from_logits=True),
}
peaks = {}
for name, call in calls.items():
    call()  # loads the kernel and starts the thread pool: one-time costs, not per call
    runs = []
    for _ in range(3):
        tracemalloc.start()
        call()
        runs.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    peaks[name] = min(runs)  # what every call allocates; a one-off (a cache filling up) is not per call
print(json.dumps(peaks))
"""


def test_forward_needs_no_per_example_memory():
    # Mean/sum reduce per row block inside the kernel, labels are not copied and validation needs no
    # boolean masks: NumPy allocates nothing that grows with the number of examples. One per-example
    # array would be 400 KB (100,000 float32 losses) or 4 MB (1,000,000); the bound is 64 KiB.
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peaks = json.loads(proc.stdout)
    assert len(peaks) == 3 and all(peak < 64 * 1024 for peak in peaks.values()), peaks
