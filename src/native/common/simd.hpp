// Portable SIMD lanes for the per-instruction-set kernel sources (see isa.hpp).
//
// With GCC and Clang the lane types are the compilers' generic vectors
// (__attribute__((vector_size))), one native register wide for the instruction set
// the including translation unit is compiled for: 64 bytes under AVX-512, 32 under
// AVX2, 16 otherwise (SSE2 on x86-64, NEON on aarch64). The compiler emits the
// target's own instructions for +, -, *, /, comparisons and shifts, so one source
// serves every variant. With other compilers (MSVC) the "lanes" are plain scalars
// and the same templates compile to scalar loops.
//
// Kernels are written once, as templates over a lane type V (f32v / f64v or the
// scalar float / double, for tails): the helpers below are overloaded for both.
// Comparisons give a mask (an integer vector of 0 / -1 lanes, or a bool), which
// select() consumes.
//
// Everything is in an anonymous namespace (each variant keeps its own copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#if (defined(__GNUC__) || defined(__clang__)) && !defined(XENT_SCALAR_LANES)
#define XENT_VECTOR_LANES 1
#if defined(__AVX512F__)
#define XENT_VEC_BYTES 64
#elif defined(__AVX2__)
#define XENT_VEC_BYTES 32
#else
#define XENT_VEC_BYTES 16
#endif
#else
#define XENT_VECTOR_LANES 0
#endif

namespace xent::simd {
namespace {

#if XENT_VECTOR_LANES
typedef float f32v __attribute__((vector_size(XENT_VEC_BYTES)));
typedef double f64v __attribute__((vector_size(XENT_VEC_BYTES)));
typedef std::int32_t i32v __attribute__((vector_size(XENT_VEC_BYTES)));
typedef std::int64_t i64v __attribute__((vector_size(XENT_VEC_BYTES)));
// As many doubles as f32v has floats (two registers): float lanes widened for exact sums.
typedef double f64w __attribute__((vector_size(2 * XENT_VEC_BYTES)));
typedef std::int64_t i64w __attribute__((vector_size(2 * XENT_VEC_BYTES)));
#else
typedef float f32v;
typedef double f64v;
typedef std::int32_t i32v;
typedef std::int64_t i64v;
typedef double f64w;
typedef std::int64_t i64w;
#endif

// Lanes<T>: the lane type of element type T, its mask / integer type and its width.
template <class T>
struct Lanes;
// Wide: V widened to double, lane for lane. For float that is two registers (f64w), on which
// GCC's comparisons and conditionals go lane by lane: compute on it only with + - * /, and
// take anything with a comparison half by half (halves f64v registers: half / set_half).
template <>
struct Lanes<float> {
  using V = f32v;
  using I = i32v;
  using Wide = f64w;
  static constexpr int width = static_cast<int>(sizeof(f32v) / sizeof(float));
  static constexpr int halves = static_cast<int>(sizeof(f64w) / sizeof(f64v));
};
template <>
struct Lanes<double> {
  using V = f64v;
  using I = i64v;
  using Wide = f64v;
  static constexpr int width = static_cast<int>(sizeof(f64v) / sizeof(double));
  static constexpr int halves = 1;
};

// ---------------------------------------------------------------- scalar overloads

inline float select(bool m, float a, float b) { return m ? a : b; }
inline double select(bool m, double a, double b) { return m ? a : b; }
inline std::int32_t select(bool m, std::int32_t a, std::int32_t b) { return m ? a : b; }
inline std::int64_t select(bool m, std::int64_t a, std::int64_t b) { return m ? a : b; }
inline std::int32_t bits(float v) {
  std::int32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
inline std::int64_t bits(double v) {
  std::int64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
inline float float_from_bits(std::int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
inline double float_from_bits(std::int64_t b) {
  double f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
inline float hsum(float v) { return v; }
inline double hsum(double v) { return v; }
inline float hmax(float v) { return v; }
inline double hmax(double v) { return v; }
inline bool any(bool m) { return m; }
inline bool all(bool m) { return m; }
inline float lane(float v, int) { return v; }
inline double lane(double v, int) { return v; }
inline std::int64_t lane_i(std::int32_t v, int) { return v; }
inline std::int64_t lane_i(std::int64_t v, int) { return v; }
inline void set_lane(std::int32_t& v, int, std::int64_t x) { v = static_cast<std::int32_t>(x); }
inline void set_lane(std::int64_t& v, int, std::int64_t x) { v = x; }
inline double widen(double v) { return v; }
inline double widen(float v) { return static_cast<double>(v); }
inline double half(double v, int) { return v; }
inline void set_half(double& w, int, double v) { w = v; }
inline float narrow(double v) { return static_cast<float>(v); }


// ---------------------------------------------------------------- vector overloads

#if XENT_VECTOR_LANES
// Bitwise blends: Clang folds them into blend / masked instructions itself, and GCC splits
// them into register-wide halves for the two-register f64w (its vector conditional on a
// type wider than a register would go lane by lane).
#define XENT_BLEND(M, A, B) (((A) & (M)) | ((B) & ~(M)))
inline f64w select(i64w m, f64w a, f64w b) { return (f64w)XENT_BLEND(m, (i64w)a, (i64w)b); }
inline i64w select(i64w m, i64w a, i64w b) { return XENT_BLEND(m, a, b); }
#if defined(__clang__)
inline f32v select(i32v m, f32v a, f32v b) { return (f32v)XENT_BLEND(m, (i32v)a, (i32v)b); }
inline f64v select(i64v m, f64v a, f64v b) { return (f64v)XENT_BLEND(m, (i64v)a, (i64v)b); }
inline i32v select(i32v m, i32v a, i32v b) { return XENT_BLEND(m, a, b); }
inline i64v select(i64v m, i64v a, i64v b) { return XENT_BLEND(m, a, b); }
#else
// GCC on register-wide vectors: the vector conditional, one blend or masked move
// (a > b ? a : b becomes max).
inline f32v select(i32v m, f32v a, f32v b) { return m ? a : b; }
inline f64v select(i64v m, f64v a, f64v b) { return m ? a : b; }
inline i32v select(i32v m, i32v a, i32v b) { return m ? a : b; }
inline i64v select(i64v m, i64v a, i64v b) { return m ? a : b; }
#endif
#undef XENT_BLEND
inline i32v bits(f32v v) { return (i32v)v; }
inline i64v bits(f64v v) { return (i64v)v; }
inline f32v float_from_bits(i32v b) { return (f32v)b; }
inline f64v float_from_bits(i64v b) { return (f64v)b; }
inline i64w bits(f64w v) { return (i64w)v; }
inline f64w float_from_bits(i64w b) { return (f64w)b; }
template <class V>
inline auto hsum_lanes(V v) {
  auto s = v[0];
  for (int l = 1; l < static_cast<int>(sizeof(V) / sizeof(v[0])); ++l) s += v[l];
  return s;
}
inline float hsum(f32v v) { return hsum_lanes(v); }
inline double hsum(f64v v) { return hsum_lanes(v); }
inline double hsum(f64w v) { return hsum_lanes(v); }
template <class V>
inline auto hmax_lanes(V v) {
  auto s = v[0];
  for (int l = 1; l < static_cast<int>(sizeof(V) / sizeof(v[0])); ++l) s = v[l] > s ? v[l] : s;
  return s;
}
inline float hmax(f32v v) { return hmax_lanes(v); }
inline double hmax(f64v v) { return hmax_lanes(v); }
template <class M>
inline bool any_lanes(M m) {
  for (int l = 0; l < static_cast<int>(sizeof(M) / sizeof(m[0])); ++l)
    if (m[l]) return true;
  return false;
}
#if defined(__AVX512F__)
inline bool any(i32v m) { return _mm512_movepi32_mask(reinterpret_cast<__m512i>(m)) != 0; }
inline bool any(i64v m) { return _mm512_movepi64_mask(reinterpret_cast<__m512i>(m)) != 0; }
#elif defined(__AVX2__)
inline bool any(i32v m) { return _mm256_movemask_ps(reinterpret_cast<__m256>(m)) != 0; }
inline bool any(i64v m) { return _mm256_movemask_pd(reinterpret_cast<__m256d>(m)) != 0; }
#elif defined(__SSE2__)
inline bool any(i32v m) { return _mm_movemask_ps(reinterpret_cast<__m128>(m)) != 0; }
inline bool any(i64v m) { return _mm_movemask_pd(reinterpret_cast<__m128d>(m)) != 0; }
#else
inline bool any(i32v m) { return any_lanes(m); }
inline bool any(i64v m) { return any_lanes(m); }
#endif
inline bool all(i32v m) { return !any_lanes(~m); }
inline bool all(i64v m) { return !any_lanes(~m); }
inline float lane(f32v v, int l) { return v[l]; }
inline std::int64_t lane_i(i32v v, int l) { return v[l]; }
inline std::int64_t lane_i(i64v v, int l) { return v[l]; }
inline std::int64_t lane_i(i64w v, int l) { return v[l]; }
inline void set_lane(i32v& v, int l, std::int64_t x) { v[l] = static_cast<std::int32_t>(x); }
inline void set_lane(i64v& v, int l, std::int64_t x) { v[l] = x; }
inline double lane(f64v v, int l) { return v[l]; }
inline double lane(f64w v, int l) { return v[l]; }
inline bool any(i64w m) { return any_lanes(m); }
inline f64w widen(f32v v) { return __builtin_convertvector(v, f64w); }
inline f64v widen(f64v v) { return v; }
inline f64v half(f64v v, int) { return v; }
inline void set_half(f64v& w, int, f64v v) { w = v; }
inline f64v half(f64w w, int h) {
  f64v v;
  std::memcpy(&v, reinterpret_cast<const char*>(&w) + h * sizeof v, sizeof v);
  return v;
}
inline void set_half(f64w& w, int h, f64v v) { std::memcpy(reinterpret_cast<char*>(&w) + h * sizeof v, &v, sizeof v); }
inline f32v narrow(f64w v) { return __builtin_convertvector(v, f32v); }
#endif

// ---------------------------------------------------------------- generic helpers

// Wide lanes back to the lane type of T (float: narrowed; double: as they are).
inline f32v to_lanes(f64w v, float) { return narrow(v); }
inline f64v to_lanes(f64v v, double) { return v; }

// Of<V>: the element type and the same-width integer lane type of a lane type V.
template <class V>
struct Of;
template <>
struct Of<float> {
  using T = float;
  using I = std::int32_t;
};
template <>
struct Of<double> {
  using T = double;
  using I = std::int64_t;
};
#if XENT_VECTOR_LANES
template <>
struct Of<f32v> {
  using T = float;
  using I = i32v;
};
template <>
struct Of<f64v> {
  using T = double;
  using I = i64v;
};
template <>
struct Of<f64w> {
  using T = double;
  using I = i64w;
};
#endif

// Elem<V>::type: the element type of a lane type (V itself for a scalar).
template <class V>
struct Elem {
  using type = V;
};
#if XENT_VECTOR_LANES
template <>
struct Elem<f32v> {
  using type = float;
};
template <>
struct Elem<f64v> {
  using type = double;
};
template <>
struct Elem<f64w> {
  using type = double;
};
template <>
struct Elem<i32v> {
  using type = std::int32_t;
};
template <>
struct Elem<i64v> {
  using type = std::int64_t;
};
template <>
struct Elem<i64w> {
  using type = std::int64_t;
};
#endif

// Every lane equal to x (V may be a scalar).
template <class V, class T>
inline V splat(T x) {
  return V{} + static_cast<typename Elem<V>::type>(x);
}
template <class V, class T>
inline V loadu(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V, class T>
inline void storeu(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
// Lane-wise max / min as the x86 max/min instructions define them: (a > b) ? a : b, so a
// NaN in `a` yields b (callers that must see NaN check sums, which propagate it).
template <class V>
inline V vmax(V a, V b) {
  return select(a > b, a, b);
}
template <class V>
inline V vmin(V a, V b) {
  return select(a < b, a, b);
}
// Lane index 0, 1, 2, ... as the element type of V (for masks of partial vectors).
template <class V>
inline V iota() {
  V v{};
  for (int l = 0; l < static_cast<int>(sizeof(V) / sizeof(lane(v, 0))); ++l) {
#if XENT_VECTOR_LANES
    v[l] = static_cast<decltype(lane(v, 0))>(l);
#else
    v = static_cast<V>(l);
#endif
  }
  return v;
}

// v[l] = p[idx[l]] (idx: one int32 offset per lane, in elements). AVX2 / AVX-512 gathers, else
// one load per lane.
template <class V, class T>
inline V gather(const T* p, const std::int32_t* idx) {
  V v{};
#if defined(__AVX512F__) && XENT_VECTOR_LANES
  if constexpr (sizeof(T) == 4) {
    __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, _mm512_loadu_si512(idx), p, 4);
    std::memcpy(&v, &g, sizeof v);
    return v;
  } else {
    __m512d g = _mm512_mask_i32gather_pd(_mm512_setzero_pd(), 0xFF,
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), p, 8);
    std::memcpy(&v, &g, sizeof v);
    return v;
  }
#elif defined(__AVX2__) && XENT_VECTOR_LANES
  if constexpr (sizeof(T) == 4) {
    __m256 g = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)),
                                        _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 4);
    std::memcpy(&v, &g, sizeof v);
    return v;
  } else {
    __m256d g = _mm256_mask_i32gather_pd(_mm256_setzero_pd(), p, _mm_loadu_si128(reinterpret_cast<const __m128i*>(idx)),
                                         _mm256_castsi256_pd(_mm256_set1_epi64x(-1)), 8);
    std::memcpy(&v, &g, sizeof v);
    return v;
  }
#else
  T lanes[sizeof(V) / sizeof(T)];
  for (std::size_t l = 0; l < sizeof(V) / sizeof(T); ++l) lanes[l] = p[idx[l]];
  std::memcpy(&v, lanes, sizeof v);
  return v;
#endif
}

// p[idx[l]] = v[l] for every lane (AVX-512 scatter, else one store per lane).
template <class V, class T>
inline void scatter(T* p, const std::int32_t* idx, V v) {
#if defined(__AVX512F__) && XENT_VECTOR_LANES
  if constexpr (sizeof(T) == 4) {
    __m512 x;
    std::memcpy(&x, &v, sizeof x);
    _mm512_i32scatter_ps(p, _mm512_loadu_si512(idx), x, 4);
  } else {
    __m512d x;
    std::memcpy(&x, &v, sizeof x);
    _mm512_i32scatter_pd(p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), x, 8);
  }
#else
  T lanes[sizeof(V) / sizeof(T)];
  std::memcpy(lanes, &v, sizeof v);
  for (std::size_t l = 0; l < sizeof(V) / sizeof(T); ++l) p[idx[l]] = lanes[l];
#endif
}

}  // namespace
}  // namespace xent::simd
