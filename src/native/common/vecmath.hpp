// The one home of xent's vector math: exp, log and log1p for float and double.
//
// Every function is a template over a lane type V (see simd.hpp): a scalar float /
// double, or a SIMD vector of them (f32v, f64v, f64w). Each is branch-free
// (selects, no calls), so one source gives the scalar tails and the vector bodies
// of every instruction set the including translation unit is compiled for
// (AVX-512, AVX2, SSE2, NEON). The engine kernels and the metric kernels both use
// these; nothing else in the native code computes exp or log. The scalar names
// (exp_f32, log_f64, ...) are the same functions on one value.
//
// Error bounds, as relative error in units of the type's machine epsilon (float:
// 1.19e-7, double: 2.22e-16), checked against float64/mpmath values by
// tests/native/test_vecmath.py over the stated domains, for every compiled variant:
//   exp_f32   -87.33 <= x <= 88.72     < 1 eps  (below: 0, where the true value is a
//                                               subnormal < 1.2e-38; above: +inf)
//   exp_f64   -708.39 <= x <= 709.78   < 2 eps  (below: 0, true value < 2.3e-308; above: +inf)
//   expm_f32  e^(x - m), x <= m        < 1 eps  whatever |x - m|: the rounding of x - m is
//                                               carried into the reduced argument (TwoSum),
//                                               so a confident softmax row keeps every digit
//                                               (0 where x - m < -87.33, e.g. x = -inf; the
//                                               scaled form e^(x - m) 2^B reaches B ln2 lower)
//   expm_f64  e^(x - m), x <= m        < 2 eps  (same; 0 where x - m < -708.39)
//   log_f64   x > 0, finite            < 1 ulp  (fdlibm's __ieee754_log, subnormals included)
//   log_f32   x > 0, finite            < 1 ulp  (correctly rounded from log_f64)
//   log1p_f64 0 <= x <= 1              < 2 eps  (atanh series, no 1 + x rounding)
//   log1p_f32 0 <= x <= 1              < 1 ulp  (rounded from log1p_f64)
//   log1p_pos_f64  x >= 0, finite      < 2 ulp  (log of 1 + x with the rounding of 1 + x corrected)
// log_f64(0) = -inf; exp and expm of NaN are NaN. Other NaN and inf inputs of log
// and log1p are the callers' concern: the kernels check for them before trusting a
// result.
//
// Everything is in an anonymous namespace: each per-instruction-set translation unit
// gets its own copy, compiled for its own instruction set (see isa.hpp).
#pragma once

#include <cstdint>
#include <cstring>

#include "simd.hpp"

namespace xent::vm {
namespace {

using simd::bits;
using simd::float_from_bits;
using simd::Of;
using simd::select;
using simd::splat;

inline float inf_f32() { return float_from_bits(std::int32_t{0x7F800000}); }
inline double inf_f64() { return float_from_bits(std::int64_t{0x7FF0000000000000LL}); }

// Kept for callers that bit-cast scalars (same as simd::bits / simd::float_from_bits).
inline float f32_from_bits(std::int32_t b) { return float_from_bits(b); }
inline std::int32_t bits_of_f32(float f) { return bits(f); }
inline double f64_from_bits(std::int64_t b) { return float_from_bits(b); }
inline std::int64_t bits_of_f64(double f) { return bits(f); }

// Round-to-nearest shifters: (y + S) - S rounds y to an integer, and the low mantissa
// bits of y + S hold that integer (bits(y + S) - bits(S)), with no float-to-int
// conversion instruction (AVX2 and SSE2 have none for 64-bit lanes).
constexpr float kShift32 = 12582912.0f;             // 1.5 * 2^23
constexpr double kShift64 = 6755399441055744.0;     // 1.5 * 2^52

// e^r for |r| <= ln2/2 (+ a few ulps): degree-7 Taylor, truncation < 2e-9 relative.
template <class V>
inline V exp_poly_f32(V r) {
  V p = splat<V>(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

// e^r for |r| <= ln2/2: degree-12 Taylor, truncation < 2e-17 relative.
template <class V>
inline V exp_poly_f64(V r) {
  V p = splat<V>(1.0 / 479001600.0);
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  return p * r + 1.0;
}

// exp(x) = 2^n e^r, n = round(x / ln 2), |r| <= ln2/2 by a two-constant (Cody-Waite)
// split of ln 2. 2^n from its exponent bits; n in [-126, 128] after the clamp, so it is
// applied as 2^(n/2) 2^(n - n/2).
template <class V>
inline V exp_f32x(V x) {
  using I = typename Of<V>::I;
  const V lo = splat<V>(-87.33654f), hi = splat<V>(88.72283f);
  V xc = select(x < lo, lo, select(x > hi, hi, x));  // NaN passes through
  V t = xc * 1.44269504088896341f + kShift32;
  V n = t - kShift32;
  I k = bits(t) - bits(kShift32);
  V r = xc - n * 0.693145751953125f;
  r = r - n * 1.428606765330187e-06f;
  V p = exp_poly_f32(r);
  I k1 = k >> 1;
  V v = p * float_from_bits((k1 + 127) << 23) * float_from_bits((k - k1 + 127) << 23);
  v = select(x < lo, splat<V>(0.0f), v);
  return select(x > hi, splat<V>(inf_f32()), v);
}

template <class V>
inline V exp_f64x(V x) {
  using I = typename Of<V>::I;
  const V lo = splat<V>(-708.39641853226408), hi = splat<V>(709.78271289338397);
  V xc = select(x < lo, lo, select(x > hi, hi, x));
  V t = xc * 1.4426950408889634 + kShift64;
  V n = t - kShift64;
  I k = bits(t) - bits(kShift64);
  V r = xc - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  V p = exp_poly_f64(r);
  I k1 = k >> 1;
  V v = p * float_from_bits((k1 + 1023) << 52) * float_from_bits((k - k1 + 1023) << 52);
  v = select(x < lo, splat<V>(0.0), v);
  return select(x > hi, splat<V>(inf_f64()), v);
}

// e^(x - m) 2^B for x <= m (a softmax term against its row maximum, optionally scaled by
// 2^B, B in [0, 64] for float, [0, 512] for double). x - m = d + err exactly (Knuth's
// TwoSum), and err joins the reduced argument: the rounding of d, up to half an ulp of
// |x - m| (2e-6 at x - m = -40 in float), would otherwise become that much relative error
// in the term. n + B stays in the normal exponent range, so 2^(n + B) is one exponent
// field, and the result is 0 only where e^(x - m) 2^B is below the smallest normal.
// The scale lets a sum of terms keep those a factor 2^B below the smallest normal (the
// terms of a row 80 logits below its max in float32) instead of flushing them to 0.
template <int B, class V>
inline V expm_f32x(V x, V m) {
  using I = typename Of<V>::I;
  static_assert(B >= 0 && B <= 64, "the scale 2^B must keep e^0 2^B far from overflow");
  V d = x - m;
  V bb = d - x;
  V err = (x - (d - bb)) + (-m - bb);
  const V lo = splat<V>(-87.33654f - static_cast<float>(B) * 0.693147180559945f);
  V dc = select(d < lo, lo, d);
  V t = dc * 1.44269504088896341f + kShift32;
  V n = t - kShift32;
  I k = bits(t) - bits(kShift32);
  V r = dc - n * 0.693145751953125f;
  r = (r - n * 1.428606765330187e-06f) + err;
  V v = exp_poly_f32(r) * float_from_bits((k + (127 + B)) << 23);
  return select(d < lo, splat<V>(0.0f), v);  // also x = -inf, where err is NaN
}

template <int B, class V>
inline V expm_f64x(V x, V m) {
  using I = typename Of<V>::I;
  static_assert(B >= 0 && B <= 512, "the scale 2^B must keep e^0 2^B far from overflow");
  V d = x - m;
  V bb = d - x;
  V err = (x - (d - bb)) + (-m - bb);
  const V lo = splat<V>(-708.39641853226408 - static_cast<double>(B) * 0.69314718055994531);
  V dc = select(d < lo, lo, d);
  V t = dc * 1.4426950408889634 + kShift64;
  V n = t - kShift64;
  I k = bits(t) - bits(kShift64);
  V r = dc - n * 6.93147180369123816490e-01;
  r = (r - n * 1.90821492927058770002e-10) + err;
  V v = exp_poly_f64(r) * float_from_bits((k + (1023 + B)) << 52);
  return select(d < lo, splat<V>(0.0), v);
}

// fdlibm's __ieee754_log with selects instead of branches: x = 2^k m, m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh(f / (2 + f)) with f = m - 1 (exact).
template <class V>
inline V log_f64x(V x) {
  using I = typename Of<V>::I;
  const double tiny = 2.2250738585072014e-308;
  auto sub = x < tiny;
  V xs = select(sub, x * 18014398509481984.0, x);  // subnormals: scale by 2^54 first
  I b = bits(xs);
  I k = ((b >> 52) & 0x7FF) - 1023 - select(sub, splat<I>(54), splat<I>(0));
  V m = float_from_bits((b & INT64_C(0xFFFFFFFFFFFFF)) | INT64_C(0x3FF0000000000000));
  auto big = m > 1.4142135623730951;
  m = select(big, m * 0.5, m);
  k = k + select(big, splat<I>(1), splat<I>(0));
  V f = m - 1.0;
  V s = f / (f + 2.0);
  V z = s * s;
  V w = z * z;
  V t1 = w * (w * (w * 1.531383769920937332e-01 + 2.222219843214978396e-01) + 3.999999999940941908e-01);
  V t2 = z * (w * (w * (w * 1.479819860511658591e-01 + 1.818357216161805012e-01) + 2.857142874366239149e-01) +
              6.666666666666735130e-01);
  V r = t2 + t1;
  V hfsq = f * f * 0.5;
  V dk = float_from_bits(k + bits(kShift64)) - kShift64;  // int64 -> double, |k| < 2^51
  V out = dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + r) + dk * 1.90821492927058770002e-10)) - f);
  return select(x == 0.0, splat<V>(-inf_f64()), out);
}

// log1p(x) = 2 atanh(t), t = x / (2 + x), |t| <= 1/3 on [0, 1]: the odd series keeps
// full relative precision for tiny x (no 1 + x rounding); terms to t^35 leave a
// truncation error below 2e-19 relative.
template <class V>
inline V log1p_f64x(V x) {
  V t = x / (x + 2.0);
  V t2 = t * t;
  V p = splat<V>(1.0 / 35.0);
  p = p * t2 + 1.0 / 33.0;
  p = p * t2 + 1.0 / 31.0;
  p = p * t2 + 1.0 / 29.0;
  p = p * t2 + 1.0 / 27.0;
  p = p * t2 + 1.0 / 25.0;
  p = p * t2 + 1.0 / 23.0;
  p = p * t2 + 1.0 / 21.0;
  p = p * t2 + 1.0 / 19.0;
  p = p * t2 + 1.0 / 17.0;
  p = p * t2 + 1.0 / 15.0;
  p = p * t2 + 1.0 / 13.0;
  p = p * t2 + 1.0 / 11.0;
  p = p * t2 + 1.0 / 9.0;
  p = p * t2 + 1.0 / 7.0;
  p = p * t2 + 1.0 / 5.0;
  p = p * t2 + 1.0 / 3.0;
  p = p * t2 + 1.0;
  return t * p * 2.0;
}

// log(1 + s) for s >= 0 (the row finish of a softmax: s = the sum of e^(x - max) other than
// one maximal term), from one log: u = 1 + s rounds, but u - 1 is exact (Sterbenz), so
// log1p(s) = log(u) + (s - (u - 1)) / u to first order in the rounding, < 2 ulp (s < 2^-53:
// u = 1 and the correction is s itself, exactly).
template <class V>
inline V log1p_pos_f64x(V s) {
  const V u = s + 1.0;
  return log_f64x(u) + (s - (u - 1.0)) / u;
}

// ---------------------------------------------------------------- one value

inline float exp_f32(float x) { return exp_f32x(x); }
inline double exp_f64(double x) { return exp_f64x(x); }
inline float expm_f32(float x, float m) { return expm_f32x<0>(x, m); }
inline double expm_f64(double x, double m) { return expm_f64x<0>(x, m); }
inline double log_f64(double x) { return log_f64x(x); }
inline float log_f32(float x) { return static_cast<float>(log_f64(static_cast<double>(x))); }
inline double log1p_f64(double x) { return log1p_f64x(x); }
inline float log1p_f32(float x) { return static_cast<float>(log1p_f64(static_cast<double>(x))); }
inline double log1p_pos_f64(double x) { return log1p_pos_f64x(x); }

// Overloads, so that templated kernels call exp(x) / log(x) for either precision.
inline float exp(float x) { return exp_f32(x); }
inline double exp(double x) { return exp_f64(x); }
inline float log(float x) { return log_f32(x); }
inline double log(double x) { return log_f64(x); }
inline float log1p_unit(float x) { return log1p_f32(x); }
inline double log1p_unit(double x) { return log1p_f64(x); }

#if XENT_VECTOR_LANES
// float lanes through double: half a vector at a time, on native double registers (simd.hpp: Wide).
template <simd::f64v (*F)(simd::f64v)>
inline simd::f32v via_f64(simd::f32v x) {
  const simd::f64w w = simd::widen(x);
  simd::f64w out{};
  for (int h = 0; h < simd::Lanes<float>::halves; ++h) simd::set_half(out, h, F(simd::half(w, h)));
  return simd::narrow(out);
}
inline simd::f32v exp(simd::f32v x) { return exp_f32x(x); }
inline simd::f64v exp(simd::f64v x) { return exp_f64x(x); }
inline simd::f32v log(simd::f32v x) { return via_f64<log_f64x<simd::f64v>>(x); }
inline simd::f64v log(simd::f64v x) { return log_f64x(x); }
inline simd::f32v log1p_unit(simd::f32v x) { return via_f64<log1p_f64x<simd::f64v>>(x); }
inline simd::f64v log1p_unit(simd::f64v x) { return log1p_f64x(x); }
#endif

// e^(x - m) 2^B in the precision of the lanes (see expm_f32x); kExpmScale<T> is the B
// the engine's softmax sums use (float: 2^64, double: 2^512).
template <class T>
struct ExpmScale;
template <>
struct ExpmScale<float> {
  static constexpr int bits = 64;
};
template <>
struct ExpmScale<double> {
  static constexpr int bits = 512;
};
template <int B = 0>
inline float expm(float x, float m) {
  return expm_f32x<B>(x, m);
}
template <int B = 0>
inline double expm(double x, double m) {
  return expm_f64x<B>(x, m);
}
#if XENT_VECTOR_LANES
template <int B = 0>
inline simd::f32v expm(simd::f32v x, simd::f32v m) {
  return expm_f32x<B>(x, m);
}
template <int B = 0>
inline simd::f64v expm(simd::f64v x, simd::f64v m) {
  return expm_f64x<B>(x, m);
}
#endif

}  // namespace
}  // namespace xent::vm
