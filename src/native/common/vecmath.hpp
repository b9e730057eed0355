// The one home of xent's vector math: exp, log and log1p for float and double.
//
// Every function here is branch-free (selects, no calls), so that a loop over an
// array of them is vectorised by the compiler for whatever instruction set the
// including translation unit is compiled for (AVX-512, AVX2, SSE2, NEON). The
// engine kernels and the metric kernels both use these; nothing else in the
// native code computes exp or log.
//
// Error bounds, as relative error in units of the type's machine epsilon (float:
// 1.19e-7, double: 2.22e-16), checked against float64/mpmath values by
// tests/native/test_vecmath.py over the stated domains, for every compiled variant:
//   exp_f32   -87.33 <= x <= 88.72     < 1 eps  (below: 0, where the true value is a
//                                               subnormal < 1.2e-38; above: +inf)
//   exp_f64   -708.39 <= x <= 709.78   < 2 eps  (below: 0, true value < 2.3e-308; above: +inf)
//   log_f64   x > 0, finite            < 1 ulp  (fdlibm's __ieee754_log, subnormals included)
//   log_f32   x > 0, finite            < 1 ulp  (correctly rounded from log_f64)
//   log1p_f64 0 <= x <= 1              < 2 eps  (atanh series, no 1 + x rounding)
//   log1p_f32 0 <= x <= 1              < 1 ulp  (rounded from log1p_f64)
// log_f64(0) = -inf. NaN and inf inputs are the callers' concern: the kernels
// check for them before trusting a result.
//
// Everything is in an anonymous namespace: each per-instruction-set translation unit
// gets its own copy, compiled for its own instruction set (see isa.hpp).
#pragma once

#include <cstdint>
#include <cstring>

namespace xent::vm {
namespace {

inline float f32_from_bits(std::int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
inline std::int32_t bits_of_f32(float f) {
  std::int32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
inline double f64_from_bits(std::int64_t b) {
  double f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
inline std::int64_t bits_of_f64(double f) {
  std::int64_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// exp(x) = 2^n e^r, n = round(x / ln 2), |r| <= ln2/2 by a two-constant (Cody-Waite)
// split of ln 2; e^r by a degree-7 Taylor polynomial (truncation < 2e-9 relative).
inline float exp_f32(float x) {
  const float lo = -87.33654f, hi = 88.72283f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  // round to nearest by the 1.5 * 2^23 shifter: branch-free and vectorisable without SSE4.1
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693145751953125f;
  r = r - n * 1.428606765330187e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n from its exponent bits; n in [-126, 128] after the clamp: split as 2^(n/2) 2^(n - n/2)
  std::int32_t k = static_cast<std::int32_t>(n);
  std::int32_t k1 = k >> 1;
  float v = p * f32_from_bits((k1 + 127) << 23) * f32_from_bits((k - k1 + 127) << 23);
  v = x < lo ? 0.0f : v;
  return x > hi ? __builtin_inff() : v;
}

// Same scheme in double: degree-12 Taylor polynomial on |r| <= ln2/2 (truncation < 2e-17).
inline double exp_f64(double x) {
  const double lo = -708.39641853226408, hi = 709.78271289338397;
  double xc = x < lo ? lo : (x > hi ? hi : x);
  double n = (xc * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0;
  double r = xc - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  double p = 1.0 / 479001600.0;
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
  p = p * r + 1.0;
  std::int64_t k = static_cast<std::int64_t>(n);
  std::int64_t k1 = k >> 1;
  double v = p * f64_from_bits((k1 + 1023) << 52) * f64_from_bits((k - k1 + 1023) << 52);
  v = x < lo ? 0.0 : v;
  return x > hi ? __builtin_inf() : v;
}

// fdlibm's __ieee754_log with selects instead of branches: x = 2^k m, m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh(f / (2 + f)) with f = m - 1 (exact).
inline double log_f64(double x) {
  const double tiny = 2.2250738585072014e-308;
  bool sub = x < tiny;
  double xs = sub ? x * 18014398509481984.0 : x;  // subnormals: scale by 2^54 first
  std::int64_t b = bits_of_f64(xs);
  std::int64_t k = ((b >> 52) & 0x7FF) - 1023 - (sub ? 54 : 0);
  double m = f64_from_bits((b & 0xFFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);
  bool big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  k = big ? k + 1 : k;
  double f = m - 1.0;
  double s = f / (2.0 + f);
  double z = s * s;
  double w = z * z;
  double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  double t2 = z * (6.666666666666735130e-01 +
                   w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  double r = t2 + t1;
  double hfsq = 0.5 * f * f;
  double dk = static_cast<double>(k);
  double out = dk * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + r) + dk * 1.90821492927058770002e-10)) - f);
  return x == 0.0 ? -__builtin_inf() : out;
}

inline float log_f32(float x) { return static_cast<float>(log_f64(static_cast<double>(x))); }

// log1p(x) = 2 atanh(t), t = x / (2 + x), |t| <= 1/3 on [0, 1]: the odd series keeps
// full relative precision for tiny x (no 1 + x rounding); terms to t^35 leave a
// truncation error below 2e-19 relative.
inline double log1p_f64(double x) {
  double t = x / (2.0 + x);
  double t2 = t * t;
  double p = 1.0 / 35.0;
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
  return 2.0 * t * p;
}

inline float log1p_f32(float x) { return static_cast<float>(log1p_f64(static_cast<double>(x))); }

// Overloads, so that templated kernels call exp(x) / log(x) for either precision.
inline float exp(float x) { return exp_f32(x); }
inline double exp(double x) { return exp_f64(x); }
inline float log(float x) { return log_f32(x); }
inline double log(double x) { return log_f64(x); }
inline float log1p_unit(float x) { return log1p_f32(x); }
inline double log1p_unit(double x) { return log1p_f64(x); }

}  // namespace
}  // namespace xent::vm
