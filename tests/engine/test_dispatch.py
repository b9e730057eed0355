"""The engine behind the public functions: taken for large inputs, transparent, and switchable off.

A spy (the fixture below) wraps the typed engine functions the public functions call,
and counts the calls that returned a result (the engine took the input).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xent
from xent import engine
from xent._lib import threads as _threads

import _engine_ref as ref
from _engine_ref import assert_close

OPS = ("logsumexp", "log_softmax", "softmax", "sparse_categorical_cross_entropy", "categorical_cross_entropy",
       "binary_cross_entropy")
calls: dict[str, int] = {}


@pytest.fixture(autouse=True)
def spy(monkeypatch):
    """Count, per engine function, the calls that returned a result (the engine took the input)."""
    calls.clear()

    def counting(name, fn):
        def counted(*args, **kwargs):
            out = fn(*args, **kwargs)
            if out is not None:
                calls[name] = calls.get(name, 0) + 1
            return out

        return counted

    for name in OPS:
        monkeypatch.setattr(engine, name, counting(name, getattr(engine, name)))


def _calls(op):
    return calls.get(op, 0)


@pytest.fixture
def engine_everywhere(monkeypatch):
    """Let the kernels take the small arrays of these tests."""
    monkeypatch.setattr(engine, "MIN_ELEMENTS", 0)


def _both(fn, *args, **kwargs):
    """(engine result, reference result), and proof that the engine ran exactly once."""
    op = kwargs.pop("op")
    before = _calls(op)
    fast = fn(*args, **kwargs)
    assert _calls(op) == before + 1, f"{op}: the engine declined"
    with engine.use_engine("reference"):
        slow = fn(*args, **kwargs)
    assert _calls(op) == before + 1, f"{op}: the reference path ran the engine"
    return fast, slow


def _assert_same(fast, slow, dtype, floor=0.0):
    fast = fast if isinstance(fast, tuple) else (fast,)
    slow = slow if isinstance(slow, tuple) else (slow,)
    for a, b in zip(fast, slow):
        assert type(a) is type(b)
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert_close(a, b, dtype, floor=floor)


def test_large_inputs_take_the_engine(rng):
    """Default threshold: a 64 x 2048 float32 batch is large enough for every kernel."""
    x = rng.normal(size=(64, 2048)).astype(np.float32)
    y = rng.integers(0, 2048, 64)
    t = xent.softmax(rng.normal(size=x.shape).astype(np.float32))
    b = (rng.uniform(size=x.shape) > 0.5).astype(np.float32)
    cases = [
        ("logsumexp", xent.logsumexp, (x,), {}),
        ("log_softmax", xent.log_softmax, (x,), {}),
        ("softmax", xent.softmax, (x,), {}),
        ("sparse_categorical_cross_entropy", xent.sparse_categorical_cross_entropy, (y, x),
         dict(from_logits=True, return_grad=True)),
        ("categorical_cross_entropy", xent.categorical_cross_entropy, (t, x), dict(from_logits=True)),
        ("binary_cross_entropy", xent.binary_cross_entropy, (b, x), dict(from_logits=True, return_grad=True)),
    ]
    for op, fn, args, kw in cases:
        fast, slow = _both(fn, *args, op=op, **kw)
        assert type(fast) is type(slow)
        # The reference's own float32 error reaches ~1e-5 for some outputs (float32 log-probabilities):
        # the engine must be within 1e-6 of the float64 answer instead (see also test_kernels).
        with engine.use_engine("reference"):
            exact = fn(*[a.astype(np.float64) if a.dtype == np.float32 else a for a in args], **kw)
        floor = float(np.abs(x).max()) if op in ("logsumexp", "log_softmax") else 0.0
        for f, ex in zip(fast if isinstance(fast, tuple) else (fast,), exact if isinstance(exact, tuple) else (exact,)):
            assert np.asarray(f).dtype == np.float32
            assert_close(f, ex, np.float32, floor=floor)


def test_small_inputs_and_other_dtypes_decline(rng):
    xent.log_softmax(rng.normal(size=(4, 10)))
    xent.sparse_categorical_cross_entropy(np.array([1, 2]), rng.normal(size=(2, 5)), from_logits=True)
    # float16 computes in float32 (and may take the engine); long double is another dtype.
    xent.log_softmax(rng.normal(size=(64, 2048)).astype(np.longdouble))
    xent.sparse_categorical_cross_entropy(np.zeros(64, int), rng.uniform(size=(64, 2048)))  # probabilities path
    assert calls == {}


def test_xent_engine_reference_env(monkeypatch, rng):
    assert engine.get_engine() == "auto"
    with engine.use_engine("reference"):
        assert engine.softmax(rng.normal(size=(64, 4096)), 1) is None
    assert engine.get_engine() == "auto"


OPTIONS = list(itertools.product(["mean", "sum", "none"], [0.0, 0.15], [False, True], [False, True], [None, 2]))


@pytest.mark.usefixtures("engine_everywhere")
@pytest.mark.parametrize("shape,axis", [((1, 7), -1), ((5, 1), -1), ((7, 3301), -1), ((3, 11, 4), 1), ((9, 5), 0)])
def test_public_losses_equal_forced_reference_float64(shape, axis, rng):
    """Every option through the public functions: engine == forced reference to 1e-12 (float64)."""
    x = rng.normal(0, 3, shape)
    ax = axis % x.ndim
    ex = shape[:ax] + shape[ax + 1 :]
    y = rng.integers(0, shape[ax], ex)
    if y.size > 1:
        y.flat[::4] = -1
    t = xent.softmax(rng.normal(size=shape), axis=axis)
    cw = rng.uniform(0.5, 2, shape[ax])
    sw = rng.uniform(0, 2, ex)
    for red, e, use_cw, use_sw, base in OPTIONS:
        opts = dict(from_logits=True, axis=axis, reduction=red, label_smoothing=e, base=base,
                    class_weights=cw if use_cw else None, weights=sw if use_sw else None)
        for grad in (False, True):
            fast, slow = _both(xent.sparse_categorical_cross_entropy, y, x, ignore_index=-1, return_grad=grad,
                               op="sparse_categorical_cross_entropy", **opts)
            _assert_same(fast, slow, np.float64, floor=float(np.abs(x).max()))
            fast, slow = _both(xent.categorical_cross_entropy, t, x, return_grad=grad,
                               op="categorical_cross_entropy", **opts)
            _assert_same(fast, slow, np.float64, floor=float(np.abs(x).max()))


@pytest.mark.usefixtures("engine_everywhere")
def test_public_all_ignored(rng):
    x = rng.normal(size=(6, 50)).astype(np.float32)
    y = np.full(6, -100)
    for red in ("mean", "sum", "none"):
        fast, slow = _both(xent.sparse_categorical_cross_entropy, y, x, from_logits=True, ignore_index=-100,
                           reduction=red, return_grad=True, op="sparse_categorical_cross_entropy")
        _assert_same(fast, slow, np.float32)
        np.testing.assert_array_equal(fast[1], 0)


@pytest.mark.usefixtures("engine_everywhere")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_binary_equal_forced_reference(dtype, rng):
    z = rng.normal(0, 4, (13, 77)).astype(dtype)
    y = (rng.uniform(size=z.shape) > 0.4).astype(dtype)
    pw = rng.uniform(0.5, 2, 77).astype(dtype)
    sw = rng.uniform(0, 2, z.shape).astype(dtype)
    for red, e, use_pw, use_sw, base in OPTIONS:
        for grad in (False, True):
            fast, slow = _both(xent.binary_cross_entropy, y, z, from_logits=True, reduction=red, label_smoothing=e,
                               pos_weight=pw if use_pw else None, weights=sw if use_sw else None, base=base,
                               return_grad=grad, op="binary_cross_entropy")
            _assert_same(fast, slow, dtype)


@pytest.mark.usefixtures("engine_everywhere")
def test_public_strided_and_non_last_axis_float32_vs_float64_truth(rng):
    base = rng.normal(0, 3, (12, 64, 6)).astype(np.float32)
    # The last layout cannot be seen as (rows, classes, inner) without a copy: the engine copies it first.
    layouts = [(base, 1, 1), (base[:, ::2], 1, 1), (base[..., 0], 0, 1), (base.T, 1, 1), (base.transpose(2, 0, 1), 2, 1)]
    for x, axis, taken in layouts:
        ax = axis % x.ndim
        y = rng.integers(0, x.shape[ax], x.shape[:ax] + x.shape[ax + 1 :])
        before = _calls("sparse_categorical_cross_entropy")
        loss, g = xent.sparse_categorical_cross_entropy(y, x, from_logits=True, axis=axis, return_grad=True,
                                                        label_smoothing=0.1)
        assert _calls("sparse_categorical_cross_entropy") == before + taken
        want_l, want_g = ref.sparse(y, x, axis=ax, label_smoothing=0.1)
        assert_close(loss, want_l, np.float32, floor=float(np.abs(x).max()))
        assert_close(g, want_g, np.float32, floor=1.0 / y.size)


def test_set_num_threads(monkeypatch, rng):
    monkeypatch.setitem(_threads._state, "n", None)
    monkeypatch.setenv("XENT_NUM_THREADS", "3")
    assert xent.get_num_threads() == 3
    xent.set_num_threads(1)
    assert xent.get_num_threads() == 1
    x = rng.normal(size=(300, 500))
    one = engine.log_softmax(x, 1)
    xent.set_num_threads(2)
    two = engine.log_softmax(x, 1)
    np.testing.assert_array_equal(one, two)  # tiles are independent: the thread count cannot change a bit
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
            xent.set_num_threads(bad)
    monkeypatch.setitem(_threads._state, "n", None)
    monkeypatch.setenv("XENT_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="XENT_NUM_THREADS"):
        xent.get_num_threads()
