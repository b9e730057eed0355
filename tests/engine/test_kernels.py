"""The engine's kernels, called directly, against plain float64 NumPy references (tests/engine/_engine_ref.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xent.engine._binary import binary_ce
from xent.engine._crossentropy import categorical_ce, sparse_ce
from xent.engine._softmax import softmax_family

import _engine_ref as ref
from _engine_ref import assert_close

DTYPES = [np.float32, np.float64]


def _cases(rng):
    """(name, logits, axis): odd shapes, a non-last axis, strided views."""
    base = rng.normal(0, 3, (10, 40))
    yield "1 row", rng.normal(0, 3, (1, 5)), 1
    yield "1 class", rng.normal(0, 3, (6, 1)), 1
    yield "7 x 33001", rng.normal(0, 3, (7, 33001)), 1
    yield "1-d", rng.normal(0, 3, (37,)), 0
    yield "middle axis", rng.normal(0, 3, (4, 9, 5)), 1
    yield "first axis", rng.normal(0, 3, (9, 6)), 0
    yield "4-d axis 1", rng.normal(0, 3, (2, 5, 3, 4)), 1
    yield "strided columns", base[:, ::2], 1
    yield "strided rows", base[::3], 1
    yield "transposed", base.T, 1
    yield "transposed axis 0", base.T, 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["logsumexp", "log_softmax", "softmax"])
def test_softmax_family(kind, dtype, rng):
    for name, x, axis in _cases(rng):
        x = x.astype(dtype)
        got = softmax_family(x, axis, kind)
        ls = ref.log_softmax(x, axis)
        # x - log_softmax(x) is constant along the axis: take it at index 0.
        lse = np.take(np.asarray(x, np.float64) - ls, 0, axis=axis)
        want = {"logsumexp": lse, "log_softmax": ls, "softmax": np.exp(ls)}[kind]
        assert got.dtype == dtype, name
        floor = float(np.max(np.abs(x))) + np.log(x.shape[axis]) if kind != "softmax" else 0.0
        assert_close(got, want, dtype, floor=floor)


def test_softmax_family_strided_views_not_copied(rng):
    base = rng.normal(size=(50, 64)).astype(np.float32)
    for x, axis in [(base[:, ::2], 1), (base.T, 0), (base[::2, 1:], 1)]:
        got = softmax_family(x, axis, "log_softmax")
        assert_close(got, ref.log_softmax(x, axis), np.float32, floor=float(np.max(np.abs(x))) + 4)


def _loss_floor(x, reduction):
    # A loss near 0 is lse - x_y: its float error is relative to |x|, whatever method computes it.
    n = x.size
    return float(np.max(np.abs(x))) * (2.0 * n if reduction == "sum" else 1.0)


def _grad_floor(x, axis, reduction):
    # Gradients are softmax-sized (|p - q| <= 1) times d result / d l_i: 1, or 1/n for the mean.
    n = x.size // x.shape[axis]
    return 1.0 / n if reduction == "mean" else 1.0


def _labels(rng, x, axis, ignore=True):
    shape = x.shape[:axis] + x.shape[axis + 1 :]
    y = rng.integers(0, x.shape[axis], shape)
    if ignore and y.size > 1:
        y.flat[::3] = -100
    return y


OPTIONS = list(itertools.product(["mean", "sum", "none"], [0.0, 0.2], [False, True], [False, True]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_every_option(dtype, rng):
    for _name, x, axis in _cases(rng):
        x = x.astype(dtype)
        y = _labels(rng, x, axis)
        c = x.shape[axis]
        cw = rng.uniform(0.2, 2.0, c).astype(dtype)
        sw = rng.uniform(0.0, 2.0, y.shape).astype(dtype)
        for reduction, e, use_cw, use_sw in OPTIONS:
            opts = dict(
                class_weights=cw if use_cw else None, weights=sw if use_sw else None,
                label_smoothing=e, reduction=reduction,
            )
            want_l, want_g = ref.sparse(y, x, axis=axis, ignore_index=-100, **opts)
            for grad in (False, True):
                loss, g = sparse_ce(x, y, axis=axis, ignore_index=-100, return_grad=grad, **opts)
                assert loss.dtype == dtype
                assert_close(loss, want_l, dtype, floor=_loss_floor(x, reduction))
                if grad:
                    assert g.dtype == dtype and g.shape == x.shape
                    assert_close(g, want_g, dtype, floor=_grad_floor(x, axis, reduction))
                else:
                    assert g is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sparse_all_ignored(dtype, reduction, rng):
    x = rng.normal(size=(5, 300)).astype(dtype)
    y = np.full(5, -1)
    loss, g = sparse_ce(
        x, y, axis=1, class_weights=None, weights=None, ignore_index=-1, label_smoothing=0.1,
        reduction=reduction, return_grad=True,
    )
    np.testing.assert_array_equal(loss, np.zeros(5) if reduction == "none" else 0.0)
    np.testing.assert_array_equal(g, np.zeros_like(x))


def test_sparse_without_ignore_index(rng):
    x = rng.normal(size=(8, 50))
    y = rng.integers(0, 50, 8)
    loss, g = sparse_ce(
        x, y, axis=1, class_weights=None, weights=None, ignore_index=None, label_smoothing=0.0,
        reduction="mean", return_grad=True,
    )
    want_l, want_g = ref.sparse(y, x, axis=1)
    assert_close(loss, want_l, np.float64)
    assert_close(g, want_g, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_every_option(dtype, rng):
    for _name, x, axis in _cases(rng):
        x = x.astype(dtype)
        t = rng.uniform(0, 1, x.shape)
        t[t < 0.3] = 0.0  # exact zeros, as in one-hot or sparse soft targets
        t = (t / np.maximum(t.sum(axis=axis, keepdims=True), 1e-9)).astype(dtype)
        c = x.shape[axis]
        cw = rng.uniform(0.2, 2.0, c).astype(dtype)
        sw = rng.uniform(0.0, 2.0, x.shape[:axis] + x.shape[axis + 1 :]).astype(dtype)
        for reduction, e, use_cw, use_sw in OPTIONS:
            opts = dict(
                class_weights=cw if use_cw else None, weights=sw if use_sw else None,
                label_smoothing=e, reduction=reduction,
            )
            want_l, want_g = ref.categorical(t, x, axis=axis, **opts)
            for grad in (False, True):
                loss, g = categorical_ce(x, t, axis=axis, return_grad=grad, **opts)
                assert_close(loss, want_l, dtype, floor=_loss_floor(x, reduction))
                if grad:
                    assert_close(g, want_g, dtype, floor=_grad_floor(x, axis, reduction))


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_logits_take_the_shifted_path(dtype, rng):
    """Rows whose plain sum(exp) overflows or underflows are redone with the max shift."""
    x = rng.normal(size=(6, 400)).astype(dtype)
    x[0] += 1e4  # exp overflows
    x[1] -= 1e4  # exp underflows to 0
    x[2, 5] = 95.0  # one entry overflows float32 exp
    x[3, :] = -np.inf
    x[3, 7] = 0.0  # -inf entries are masked classes
    y = np.array([1, 2, 5, 7, 0, 9])
    for kind in ("logsumexp", "log_softmax", "softmax"):
        got = softmax_family(x, 1, kind)
        ls = ref.log_softmax(x, 1)
        lse = np.logaddexp.reduce(x.astype(np.float64), axis=1)
        want = {"logsumexp": lse, "log_softmax": ls, "softmax": np.exp(ls)}[kind]
        if kind == "log_softmax":  # -inf stays -inf; compare the finite part row by row
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
            for r in range(6):
                f = np.isfinite(want[r])
                assert_close(got[r][f], want[r][f], dtype, floor=float(np.max(np.abs(x[r][f]))))
        else:
            assert_close(got, want, dtype)
    loss, g = sparse_ce(
        x, y, axis=1, class_weights=None, weights=None, ignore_index=None, label_smoothing=0.0,
        reduction="none", return_grad=True,
    )
    want_l, want_g = ref.sparse(y, x, axis=1, reduction="none")
    assert_close(loss, want_l, dtype, floor=1e4)
    assert_close(g, want_g, dtype)


def test_masked_classes_with_zero_targets(rng):
    """A -inf logit with target 0 contributes 0 (0 log 0 = 0), not NaN."""
    x = rng.normal(size=(4, 300))
    x[:, :10] = -np.inf
    t = rng.uniform(size=x.shape)
    t[:, :10] = 0
    t /= t.sum(1, keepdims=True)
    loss, g = categorical_ce(
        x, t, axis=1, class_weights=None, weights=None, label_smoothing=0.0, reduction="none", return_grad=True
    )
    want_l, want_g = ref.categorical(t, x, axis=1, reduction="none")
    assert_close(loss, want_l, np.float64)
    assert_close(g, want_g, np.float64)


def test_all_neg_inf_row_logsumexp():
    x = np.full((3, 100), -np.inf)
    x[1] = 0.0
    got = softmax_family(x, 1, "logsumexp")
    assert got[0] == -np.inf and got[2] == -np.inf
    assert got[1] == pytest.approx(np.log(100), rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_every_option(dtype, rng):
    shapes = [(1,), (7, 33), (3, 4, 130), (20000,)]
    for shape in shapes:
        z = rng.normal(0, 4, shape).astype(dtype)
        z.flat[:: 7] *= 40  # large |z|: the log1p(exp(-|z|)) path
        y = rng.integers(0, 2, shape).astype(dtype)
        y.flat[::5] = 0.3  # soft targets are allowed
        pw = rng.uniform(0.5, 3, shape[-1]).astype(dtype)
        sw = rng.uniform(0, 2, shape).astype(dtype)
        sw.flat[::4] = 0.0
        for reduction, e, use_pw, use_sw in OPTIONS:
            opts = dict(
                pos_weight=pw if use_pw else None, weights=sw if use_sw else None,
                label_smoothing=e, reduction=reduction,
            )
            want_l, want_g = ref.binary(y, z, **opts)
            for grad in (False, True):
                loss, g = binary_ce(y, z, return_grad=grad, **opts)
                assert loss.dtype == dtype
                assert_close(loss, want_l, dtype)
                if grad:
                    assert_close(g, want_g, dtype)


def test_binary_strided_and_broadcast(rng):
    base = rng.normal(size=(30, 80))
    z = base[:, ::2]
    y = (rng.uniform(size=(30, 1)) > 0.5).astype(np.float64)
    loss, g = binary_ce(
        np.broadcast_to(y, z.shape), z, weights=None, pos_weight=np.full(z.shape, 2.0), label_smoothing=0.1,
        reduction="mean", return_grad=True,
    )
    want_l, want_g = ref.binary(np.broadcast_to(y, z.shape), z, pos_weight=2.0, label_smoothing=0.1)
    assert_close(loss, want_l, np.float64)
    assert_close(g, want_g, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_class_with_zero_weight_and_smoothing(dtype, rng):
    """A -inf logit whose class weight is 0 adds 0 to the smoothing sum (it gave NaN on the tiled paths)."""
    c = 10
    cw = np.ones(c, dtype)
    cw[3] = 0.0
    base = rng.normal(0, 1, (6, c, 4)).astype(dtype)
    base[:, 3, :] = -np.inf
    big = base[..., 0].copy()
    big[0, 0] = 95.0  # a row whose plain sum of exp overflows float32
    for x, axis in [(base[..., 0].copy(), 1), (base, 1), (base[:, :, ::2], 1), (big, 1)]:
        y = rng.integers(0, c, x.shape[:axis] + x.shape[axis + 1 :])
        y[y == 3] = 4
        opts = dict(class_weights=cw, weights=None, label_smoothing=0.2, reduction="none")
        loss, g = sparse_ce(x, y, axis=axis, ignore_index=None, return_grad=True, **opts)
        want_l, want_g = ref.sparse(y, x, axis=axis, **{k: v for k, v in opts.items() if k != "weights"})
        assert np.isfinite(loss).all() and np.isfinite(g).all()
        assert_close(loss, want_l, dtype, floor=100.0)
        assert_close(g, want_g, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_smoothing_with_target_on_minus_inf(dtype, rng):
    """label_smoothing=1 gives the -inf class weight 1/C: the loss is +inf (as the reference), the gradient finite."""
    x = rng.normal(0, 1, (5, 8)).astype(dtype)
    x[:, 2] = -np.inf
    loss, g = sparse_ce(x, np.array([2, 0, 1, 2, 5]), axis=1, class_weights=None, weights=None, ignore_index=None,
                        label_smoothing=1.0, reduction="none", return_grad=True)
    assert np.all(np.isposinf(loss)) and np.isfinite(g).all()
