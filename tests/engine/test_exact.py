"""A randomised sweep of the engine against exact values: layouts x dtypes x options x adversarial logits.

Seeded cases (so a failure names its case and reruns), each compared with the
extended-precision truth of tests/engine/_truth.py, never with xent's reference
path, on every compiled instruction-set variant this CPU runs, and on the NumPy
fallback where it claims exactness. Tolerance: 1e-6 relative (float32), 1e-12
(float64), per example for losses and per row (class vector) for gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_native import ISAS, assert_rows, assert_values, nat

import xent
from xent import engine

import _truth

pytestmark = pytest.mark.skipif(nat is None, reason="the native extension is not built")
N_CASES = int(__import__("os").environ.get("XENT_SWEEP_CASES", "40"))


def _logits(rng: np.random.Generator, rows: int, c: int, dtype, labels=None) -> np.ndarray:
    """Adversarial logits, (rows, c): confident rows, ties, huge offsets, -inf masks, near-overflow values."""
    f32 = dtype == np.float32
    x = rng.normal(0, rng.choice([0.1, 3.0, 30.0]), (rows, c))
    x += rng.choice([0.0, 0.0, 55.0, -300.0, 1e4 if f32 else 1e12], size=(rows, 1))
    pattern = rng.integers(0, 6, rows)
    top = labels if labels is not None else rng.integers(0, c, rows)
    top = np.clip(top, 0, c - 1)
    for r in range(rows):
        if pattern[r] == 1:  # confident: the label (or a class) far above the rest
            x[r, top[r]] = x[r].max() + rng.choice([12.0, 40.0, 80.0 if f32 else 300.0])
        elif pattern[r] == 2 and c > 2:  # ties at the max
            k = rng.integers(2, min(c, 5) + 1)
            x[r, rng.choice(c, k, replace=False)] = x[r].max() + 1.0
        elif pattern[r] == 3 and c > 2:  # masked classes (never all of them)
            x[r, rng.choice(c, rng.integers(1, c), replace=False)] = -np.inf
            x[r, top[r]] = x[r][np.isfinite(x[r])].max() if np.isfinite(x[r]).any() else 0.0
        elif pattern[r] == 4 and f32:  # exps near the float32 overflow
            x[r] = rng.uniform(60, 88, c)
    return x.astype(dtype)


def _layout(rng: np.random.Generator, x2: np.ndarray):
    """The (rows, C) logits in a random layout: (array, axis, function taking back (rows, C) from a per-row array)."""
    rows, c = x2.shape
    kind = rng.choice(["last", "middle", "first", "strided", "reversed", "fortran"])
    if kind == "middle" and rows % 2 == 0 and rows >= 4:
        o = 2
        x = np.moveaxis(x2.reshape(o, rows // o, c), 2, 1).copy()  # (o, C, rows/o)
        return x, 1
    if kind == "first":
        return np.ascontiguousarray(x2.T), 0
    if kind == "strided":
        big = np.zeros((rows, 2 * c), x2.dtype)
        big[:, ::2] = x2
        return big[:, ::2], 1
    if kind == "reversed":
        return np.ascontiguousarray(x2[:, ::-1])[:, ::-1], 1
    if kind == "fortran":
        return np.asfortranarray(x2), 1
    return x2, 1


def _example_shape(x: np.ndarray, axis: int) -> tuple[int, ...]:
    return x.shape[:axis] + x.shape[axis + 1 :]


def _case(seed: int, dtype):
    rng = np.random.default_rng(seed)
    c = int(rng.choice([1, 2, 3, 7, 16, 33, 100, 257, 1000]))
    rows = int(rng.choice([1, 4, 10, 24, 64])) if c < 1000 else int(rng.choice([1, 4, 8]))
    y2 = rng.integers(0, c, rows)
    x2 = _logits(rng, rows, c, dtype, labels=y2)
    x, axis = _layout(rng, x2)
    ex = _example_shape(x, axis)
    y = y2.reshape(ex).copy()  # every layout keeps the rows' order along its example axes
    ignore = None
    if rng.uniform() < 0.4 and y.size > 1:
        ignore = -100
        y.flat[:: int(rng.integers(2, 5))] = -100
    opts = dict(
        reduction=str(rng.choice(["mean", "sum", "none"])),
        label_smoothing=float(rng.choice([0.0, 0.0, 0.1, 1.0])),
        class_weights=None if rng.uniform() < 0.5 else rng.choice([0.0, 0.5, 1.0, 2.0], c).astype(dtype),
        weights=None if rng.uniform() < 0.5 else rng.choice([0.0, 0.3, 1.0, 4.0], ex).astype(dtype),
    )
    return rng, x, axis, y, ignore, opts


def _check(dtype, got, want, axis):
    loss, g = got
    want_l, want_g, parts = want
    assert np.asarray(loss).dtype == dtype and g.dtype == dtype
    assert_values(loss, want_l, dtype)
    assert_rows(g, want_g, dtype, axis=axis, parts=parts)


@pytest.fixture(autouse=True)
def engine_everywhere(monkeypatch):
    monkeypatch.setattr(engine, "MIN_ELEMENTS", 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sweep_against_exact_values(dtype):
    try:
        for seed in range(N_CASES):
            rng, x, axis, y, ignore, opts = _case(seed, dtype)
            with np.errstate(all="ignore"):
                want_sparse = _truth.sparse(y, x, axis=axis, ignore_index=ignore, with_parts=True, **opts)
                t = rng.dirichlet(np.full(x.shape[axis], 0.3), _example_shape(x, axis))
                t = np.moveaxis(np.where(t < 0.05, 0.0, t), -1, axis).astype(dtype)
                want_cat = _truth.categorical(t, x, axis=axis, with_parts=True, **opts)
                finite_rows = np.isfinite(np.moveaxis(x, axis, -1)).any(axis=-1).all()
                want_sm = {k: _truth.softmax_family(x, axis, k) for k in ("logsumexp", "log_softmax", "softmax")}
            for isa in ISAS:
                nat.engine.set_isa(isa)
                where = f"seed {seed}, {isa}, axis {axis}, shape {x.shape}, ignore {ignore}, {opts}"
                try:
                    got = xent.sparse_categorical_cross_entropy(
                        y, x, from_logits=True, axis=axis, ignore_index=ignore, return_grad=True, **opts)
                    _check(dtype, got, want_sparse, axis)
                    got = xent.categorical_cross_entropy(t, x, from_logits=True, axis=axis, return_grad=True, **opts)
                    _check(dtype, got, want_cat, axis)
                    if finite_rows:
                        for kind, want in want_sm.items():
                            got = getattr(xent, kind)(x, axis=axis)
                            if kind == "softmax":
                                assert_rows(got, want, dtype, axis=axis)
                            elif kind == "log_softmax":
                                assert_rows(np.where(np.isinf(want), 0, got), np.where(np.isinf(want), 0, want),
                                            dtype, axis=axis)
                                np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
                            else:
                                assert_values(got, want, dtype)
                except AssertionError as exc:
                    raise AssertionError(f"{where}: {exc}") from None
    finally:
        nat.engine.set_isa(ISAS[-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_sweep_against_exact_values(dtype):
    try:
        for seed in range(N_CASES):
            rng = np.random.default_rng(1000 + seed)
            shape = tuple(int(s) for s in rng.choice([1, 3, 17, 64], rng.integers(1, 4)))
            z = rng.normal(0, rng.choice([0.5, 5.0, 50.0]), shape)
            z.flat[:: int(rng.integers(2, 9))] *= rng.choice([1.0, 40.0, 1e3])
            z = z.astype(dtype)
            y = rng.choice([0.0, 1.0, 0.3], shape).astype(dtype)
            opts = dict(
                reduction=str(rng.choice(["mean", "sum", "none"])),
                label_smoothing=float(rng.choice([0.0, 0.2, 1.0])),
                weights=None if rng.uniform() < 0.5 else rng.choice([0.0, 1.0, 3.0], shape).astype(dtype),
                pos_weight=None if rng.uniform() < 0.5 else rng.uniform(0.2, 4, shape[-1:]).astype(dtype),
            )
            view = rng.choice(["plain", "strided", "broadcast"])
            if view == "strided":
                big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
                big[..., ::2] = z
                z = big[..., ::2]
            elif view == "broadcast":
                y = np.broadcast_to(y[..., :1], shape)
            with np.errstate(all="ignore"):
                want = _truth.binary(y, z, **opts)
            for isa in ISAS:
                nat.engine.set_isa(isa)
                got = xent.binary_cross_entropy(y, z, from_logits=True, return_grad=True, **opts)
                try:
                    assert_values(got[0], want[0], dtype)
                    floor = TOL_FLOOR[np.dtype(dtype)] * np.abs(want[1]).max(initial=0)
                    assert_values(got[1], want[1], dtype, floor=floor)
                except AssertionError as exc:
                    raise AssertionError(f"seed {1000 + seed}, {isa}, {view}, shape {shape}, {opts}: {exc}") from None
    finally:
        nat.engine.set_isa(ISAS[-1])


# A binary gradient entry b sigmoid(z) - a sigmoid(-z) cancels where the prediction meets the
# target (inherent in the value): judge each entry against the largest one, as a row of the others.
TOL_FLOOR = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}
