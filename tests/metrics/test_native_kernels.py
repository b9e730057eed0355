"""The native metric kernels against their NumPy reference, field by field, for every variant.

The NumPy kernels (xent/metrics/_kernels_numpy.py) are the oracle: every field of
the state (Sums) must agree to 1e-12 relative (only the summation order differs)
and every count exactly, for each label/prediction dtype, layout, option, thread
count and compiled instruction-set variant; an invalid row must be reported at the
same index with the state untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from xent._lib.native import native
from xent.metrics import BinaryState, MulticlassState
from xent.metrics import _kernels_numpy as ref
from xent.metrics._sums import Sums

nat = native()
pytestmark = pytest.mark.skipif(nat is None, reason="the native extension is not built")


def _binary(n, seed, *, label=np.int8, pred=np.float32, logits=False):
    rng = np.random.default_rng(seed)
    if logits:
        p = rng.normal(0, 4, n)
        p[: min(n, 6)] = [800.0, -800.0, 0.0, 40.0, -40.0, 1e-300][: min(n, 6)]
    else:
        p = rng.random(n)
        p[: min(n, 5)] = [0.0, 1.0, 0.5, 1e-30, 1 - 1e-12][: min(n, 5)]
    y = (rng.random(n) < 0.4).astype(label)
    w = rng.random(n) * 10.0 ** rng.integers(-3, 3, n)
    return y, p.astype(pred), w


def _multi(n, k, seed, *, pred=np.float32, logits=False):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (n, k))
    if logits:
        z[0] = 0.0  # ties: the first maximum wins
        if n > 1:
            z[1, 0] = 700.0  # a confident row
        return rng.integers(0, k, n).astype(np.int8 if k < 100 else np.int64), z.astype(pred), rng.random(n)
    P = np.exp(z - z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    P[0] = 1.0 / k
    return rng.integers(0, k, n).astype(np.int8 if k < 100 else np.int64), P.astype(pred), rng.random(n)


def _same(a: Sums, b: Sums, rel=1e-12):
    assert a.names == b.names
    for name in a.names:
        x, y = getattr(a, name), getattr(b, name)
        if x.dtype == np.int64:
            assert np.array_equal(x, y), name
        else:
            tx, ty = a.total(name), b.total(name)
            assert np.allclose(tx, ty, rtol=rel, atol=1e-300, equal_nan=True), (name, tx, ty)


def _fold_both(make, y, p, w, **kw):
    s_nat, s_ref = make(), make()
    args_nat = (s_nat.sums, s_nat.from_logits)
    if isinstance(s_nat, BinaryState):
        r1 = nat.metrics.binary(y, p, w, *args_nat, kw["eps"], kw.get("threads", 2))
        r2 = ref.binary(y, p, w, s_ref.sums, s_ref.from_logits, kw["eps"])
    else:
        r1 = nat.metrics.multiclass(y, p, w, *args_nat, kw["eps"], s_nat.tolerance, kw.get("threads", 2))
        r2 = ref.multiclass(y, p, w, s_ref.sums, s_ref.from_logits, kw["eps"], s_ref.tolerance)
    return r1, r2, s_nat, s_ref


@pytest.mark.parametrize("label", [np.int8, np.int64])
@pytest.mark.parametrize("pred", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("logits", [False, True])
def test_binary_fields_equal_reference(label, pred, weighted, logits):
    n = 150_001  # three tasks, the last one short
    y, p, w = _binary(n, 1, label=label, pred=pred, logits=logits)
    eps = 0.0 if logits else float(np.finfo(pred).eps)
    r1, r2, a, b = _fold_both(lambda: BinaryState(n_bins=7, from_logits=logits), y, p, w if weighted else None,
                              eps=eps)
    assert r1 == r2 == -1
    _same(a.sums, b.sums)
    assert a.rows == n


@pytest.mark.parametrize("k", [2, 3, 10, 300])
@pytest.mark.parametrize("layout", ["columns", "row-major", "column-major", "strided"])
@pytest.mark.parametrize("logits", [False, True])
def test_multiclass_fields_equal_reference(k, layout, logits):
    n = 9_001 if k < 100 else 1_500
    y, P, w = _multi(n, k, 2, logits=logits)
    if layout == "columns":
        X = [np.ascontiguousarray(P[:, c]) for c in range(k)]
    elif layout == "row-major":
        X = P
    elif layout == "column-major":
        X = np.asfortranarray(P)
    else:  # every other row of a wider array: row stride 2K, column stride 1
        wide = np.zeros((2 * n, k + 3), dtype=P.dtype)
        wide[::2, 1:k + 1] = P
        X = wide[::2, 1:k + 1]
    eps = 0.0 if logits else float(np.finfo(np.float32).eps)
    for weighted in (False, True):
        r1, r2, a, b = _fold_both(lambda: MulticlassState(k, n_bins=9, from_logits=logits), y, X,
                                  w if weighted else None, eps=eps)
        assert r1 == r2 == -1
        _same(a.sums, b.sums)


def test_multiclass_float64_and_int64_labels():
    y, P, w = _multi(5000, 4, 3, pred=np.float64)
    for y_ in (y.astype(np.int64), y.astype(np.int8)):
        r1, r2, a, b = _fold_both(lambda: MulticlassState(4), y_, P, w, eps=1e-15)
        assert r1 == r2 == -1
        _same(a.sums, b.sums)


def test_results_do_not_depend_on_threads():
    y, p, w = _binary(300_000, 4)
    ym, P, wm = _multi(100_000, 10, 5)
    cols = list(np.ascontiguousarray(P.T))
    outs = []
    for threads in (1, 2, 3, 8):
        b, m = BinaryState(), MulticlassState(10)
        assert b.fold(y, p, w, threads=threads) == -1 and m.fold(ym, cols, wm, threads=threads) == -1
        outs.append((b.sums, m.sums))
    for b, m in outs[1:]:  # bit for bit
        for x, ref_ in ((b, outs[0][0]), (m, outs[0][1])):
            for name in x.names:
                assert np.array_equal(getattr(x, name), getattr(ref_, name)), name


@pytest.mark.parametrize("where", [0, 70_000, 149_999])
def test_binary_invalid_rows_first_index_and_state_untouched(where):
    y, p, w = _binary(150_000, 6, label=np.int64, pred=np.float64)
    cases = [("p", np.nan), ("p", 1.5), ("p", -0.1), ("y", 2), ("y", -1), ("y", 2**32), ("w", -1.0), ("w", np.inf),
             ("w", np.nan)]
    for col, value in cases:
        yy, pp, ww = y.copy(), p.copy(), w.copy()
        {"y": yy, "p": pp, "w": ww}[col][where] = value
        {"y": yy, "p": pp, "w": ww}[col][-1] = value  # a later bad row is not the one reported
        r1, r2, a, b = _fold_both(BinaryState, yy, pp, ww, eps=1e-15)
        assert r1 == r2 == (where if where < 149_999 else 149_999), (col, value)
        assert a.rows == 0 and all(not getattr(a.sums, f).any() for f in a.sums.names), (col, value)
    yy, pp = y.copy(), p.copy()
    pp[where] = np.inf
    r1, r2, a, _ = _fold_both(lambda: BinaryState(from_logits=True), yy, pp, None, eps=0.0)
    assert r1 == r2 == where and a.rows == 0


@pytest.mark.parametrize("logits", [False, True])
def test_multiclass_invalid_rows(logits):
    y, P, w = _multi(20_000, 5, 7, pred=np.float64, logits=logits)
    cases = [(lambda P, y, w: P.__setitem__((1234, 2), np.nan)), (lambda P, y, w: y.__setitem__(1234, 5)),
             (lambda P, y, w: y.__setitem__(1234, -1)), (lambda P, y, w: w.__setitem__(1234, -2.0))]
    if logits:
        cases.append(lambda P, y, w: P.__setitem__((1234, 4), -np.inf))
    else:
        cases += [(lambda P, y, w: P.__setitem__((1234, 0), 1.5)), (lambda P, y, w: P.__setitem__((1234, 0), P[1234, 0] + 0.01))]
    for i, case in enumerate(cases):
        PP, yy, ww = P.copy(), y.copy(), w.copy()
        case(PP, yy, ww)
        PP[19_000, 1] = np.nan
        r1, r2, a, _ = _fold_both(lambda: MulticlassState(5, from_logits=logits), yy, PP, ww, eps=0.0)
        assert r1 == r2 == 1234, i
        assert a.rows == 0 and not a.sums.class_rows.any() and not a.sums.loss.any()


def test_edges_empty_infinite_loss_and_bad_sums():
    s = BinaryState()
    assert s.fold(np.zeros(0, np.int8), np.zeros(0, np.float32), None) == -1 and s.rows == 0
    y, p = np.array([1, 0], np.int8), np.array([0.0, 0.5])
    a, b = BinaryState(eps=0.0), BinaryState(eps=0.0)
    a.fold(y, p, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XENT_SCORE_KERNEL", "numpy")
        b.fold(y, p, None)
    assert a.compute().log_loss == b.compute().log_loss == np.inf
    with pytest.raises(ValueError, match="sums.weight"):
        bad = BinaryState().sums
        bad._arrays["weight"] = np.zeros((2, 1), np.float32)
        nat.metrics.binary(y, p, None, bad, False, 0.0, 1)


def _isa_script() -> str:
    return r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import test_native_kernels as t
from xent.metrics import BinaryState, MulticlassState
out = {}
for logits in (False, True):
    y, p, w = t._binary(70_001, 8, logits=logits)
    r1, r2, a, b = t._fold_both(lambda: BinaryState(from_logits=logits), y, p, w, eps=0.0 if logits else 1e-7)
    t._same(a.sums, b.sums)
    ym, P, wm = t._multi(5_001, 7, 9, logits=logits)
    r1, r2, a, b = t._fold_both(lambda: MulticlassState(7, from_logits=logits), ym, P, wm, eps=0.0 if logits else 1e-7)
    t._same(a.sums, b.sums)
import xent._native as n
print(n.isa())
"""


def test_every_instruction_set_variant():
    here = os.path.dirname(os.path.abspath(__file__))
    for isa in nat.usable_isas():
        if isa == nat.isa():
            continue  # the variant in use: every other test here
        proc = subprocess.run([sys.executable, "-c", _isa_script(), here], capture_output=True, text=True,
                              env=dict(os.environ, XENT_ISA=isa), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == isa
