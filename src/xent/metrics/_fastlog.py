"""A branch-free float64 natural log for numba loops, so that LLVM can vectorise them.

numba's ``math.log`` is a libm call per element (no SVML here), which stops
the loop vectoriser; this is fdlibm's ``__ieee754_log`` (error < 1 ulp) written
with selects instead of branches. Only used by the fused metric kernels; the
NumPy reference path uses ``np.log`` and the tests compare the two.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["fast_log"]


@intrinsic
def _f64_bits(typingctx, x):  # pragma: no cover - compiled
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return sig, codegen


@intrinsic
def _bits_f64(typingctx, x):  # pragma: no cover - compiled
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_TINY = 2.2250738585072014e-308


@numba.njit(inline="always", error_model="numpy")
def fast_log(t):  # pragma: no cover - compiled
    """log(t) for t >= 0 (log 0 = -inf); t must not be NaN or inf (the kernels check first)."""
    # subnormals: scale by 2^54 so that the exponent field is meaningful
    tiny = t < _TINY
    ts = t * 18014398509481984.0 if tiny else t
    b = _f64_bits(ts)
    k = ((b >> 52) & 0x7FF) - 1023 - (54 if tiny else 0)
    x = _bits_f64((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # mantissa in [1, 2)
    big = x > _SQRT2  # reduce to [sqrt(1/2), sqrt(2)) so that |f| <= 0.414
    x = x * 0.5 if big else x
    k = k + 1 if big else k
    f = x - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    hfsq = 0.5 * f * f
    dk = np.float64(k)
    out = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    return -np.inf if t == 0.0 else out
