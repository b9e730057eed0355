"""The native vector math (src/native/common/vecmath.hpp) meets its stated error bounds.

Every compiled instruction-set variant this CPU can run is checked against
float64 NumPy values (for float32) or mpmath (for float64), on dense grids over
the stated domains plus their edges.
"""

from __future__ import annotations

import numpy as np
import pytest

from xent._lib.native import native

nat = native()
pytestmark = pytest.mark.skipif(nat is None, reason="the native extension is not built")
ISAS = nat.usable_isas() if nat is not None else []


def _run(fn: str, isa: str, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    nat.vecmath(fn, isa, x, out)
    return out


def _mp(fn: str, x: np.ndarray) -> np.ndarray:
    import mpmath

    mpmath.mp.prec = 120
    f = {"exp": mpmath.exp, "log": mpmath.log, "log1p": mpmath.log1p, "log1p_pos": mpmath.log1p}[fn]
    return np.array([float(f(mpmath.mpf(float(v)))) for v in x])


def _truth(fn: str, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float32:  # float64 NumPy is exact enough to judge float32
        return getattr(np, fn)(x.astype(np.float64))
    fn = "log1p" if fn == "log1p_pos" else fn
    return _mp(fn, x)


def _grid(fn: str, dtype: type, n: int, rng: np.random.Generator) -> np.ndarray:
    f32 = dtype == np.float32
    if fn == "exp":
        lo, hi = (-87.33, 88.72) if f32 else (-708.39, 709.78)
        x = np.concatenate([np.linspace(lo, hi, n), rng.uniform(-2, 2, n), [0.0, lo, hi, 1e-30, -1e-30]])
    elif fn == "log":
        tiny = np.finfo(dtype).smallest_subnormal
        e = np.linspace(np.log(float(tiny)), np.log(float(np.finfo(dtype).max)) - 1e-9, n)
        x = np.concatenate([np.exp(e), rng.uniform(0.5, 2.0, n), [1.0, float(tiny), float(np.finfo(dtype).tiny)]])
    elif fn == "log1p_pos":  # the softmax row finish: 0 <= x <= C, tiny for confident rows
        x = np.concatenate([np.exp(rng.uniform(-745, 14, n)), rng.uniform(0, 3, n), [0.0, 1.0, 1e-300, 2.0**-53]])
    else:
        x = np.concatenate([np.linspace(0.0, 1.0, n), np.exp(rng.uniform(-60, 0, n)), [0.0, 1.0, 1e-300]])
    return x.astype(dtype)


# (function, dtype) -> bound (inclusive) on |out - truth| / |truth| in units of the dtype's eps (log: in ulps of the result)
BOUNDS = {("exp", np.float32): 1.0, ("exp", np.float64): 2.0, ("log", np.float32): 1.0, ("log", np.float64): 1.0,
          ("log1p", np.float32): 1.0, ("log1p", np.float64): 2.0, ("log1p_pos", np.float64): 2.0}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fn,dtype", list(BOUNDS), ids=[f"{f}-{d.__name__}" for f, d in BOUNDS])
def test_error_bound(isa: str, fn: str, dtype: type, rng: np.random.Generator) -> None:
    n = 20001 if dtype == np.float32 else 1500  # mpmath is slow: fewer float64 points
    x = _grid(fn, dtype, n, rng)
    got = _run(fn, isa, x).astype(np.float64)
    want = _truth(fn, x)
    nz = want != 0
    assert np.array_equal(got[~nz], want[~nz])
    if fn == "log":  # ulps of the result: relative error blows up near log(1) = 0
        err = np.abs(got[nz] - want[nz]) / np.spacing(np.abs(want[nz]).astype(dtype)).astype(np.float64)
    else:
        err = np.abs(got[nz] - want[nz]) / np.abs(want[nz]) / np.finfo(dtype).eps
    assert err.max() <= BOUNDS[(fn, dtype)], f"{fn} {dtype.__name__} on {isa}: {err.max():.3g} at x={x[nz][err.argmax()]!r}"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_edges(isa: str, dtype: type) -> None:
    big = 100.0 if dtype == np.float32 else 1000.0
    x = np.array([-np.inf, -big, big, np.inf, np.nan], dtype=dtype)
    out = _run("exp", isa, x)
    assert out[0] == 0 and out[1] == 0 and out[2] == np.inf and out[3] == np.inf and np.isnan(out[4])


@pytest.mark.parametrize("isa", ISAS)
def test_log_zero(isa: str) -> None:
    assert _run("log", isa, np.array([0.0]))[0] == -np.inf


def test_variant_in_use_is_the_best_usable() -> None:
    assert nat.isa() == ISAS[-1]


def _expm_grid(dtype: type, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, m) with x <= m: softmax terms against their row max, with maxima far from 0 and
    differences from 0 to past the underflow threshold (where x - m rounds the most)."""
    lo = -87.0 if dtype == np.float32 else -707.0
    m = np.concatenate([rng.uniform(-50, 50, n), rng.choice([0.0, 12.3, 40.1, -33.7, 1e4], n)])
    d = np.concatenate([rng.uniform(lo, 0, n), -np.exp(rng.uniform(-20, np.log(-lo), n))])
    x = (m + d).astype(dtype)
    m = m.astype(dtype)
    keep = x <= m
    return x[keep], m[keep]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_expm_error_bound(isa: str, dtype: type, rng: np.random.Generator) -> None:
    """e^(x - m) keeps its relative accuracy however far x - m is from 0 (the rounding of x - m is carried)."""
    x, m = _expm_grid(dtype, 20000 if dtype == np.float32 else 1500, rng)
    out = np.empty_like(x)
    nat.vecmath_expm(isa, x, m, out)
    if dtype == np.float32:  # x - m is exact in float64 for these float32 values
        want = np.exp(x.astype(np.float64) - m.astype(np.float64))
    else:
        import mpmath

        mpmath.mp.prec = 120
        want = np.array([float(mpmath.exp(mpmath.mpf(float(a)) - mpmath.mpf(float(b)))) for a, b in zip(x, m, strict=True)])
    nz = want > np.finfo(dtype).tiny
    err = np.abs(out[nz] - want[nz]) / want[nz] / np.finfo(dtype).eps
    bound = 1.0 if dtype == np.float32 else 2.0
    worst = err.argmax()
    assert err.max() <= bound, f"expm {dtype.__name__} on {isa}: {err.max():.3g} at x={x[nz][worst]!r}, m={m[nz][worst]!r}"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_expm_edges(isa: str, dtype: type) -> None:
    x = np.array([-np.inf, 3.0, 3.0, -1e4, np.nan, 7.0], dtype=dtype)
    m = np.array([0.0, 3.0, np.inf, 0.0, 1.0, np.nan], dtype=dtype)
    out = np.empty_like(x)
    nat.vecmath_expm(isa, x, m, out)
    assert out[0] == 0 and out[1] == 1 and out[2] == 0 and out[3] == 0 and np.isnan(out[4]) and np.isnan(out[5])
