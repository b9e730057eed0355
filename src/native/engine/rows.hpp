// The row kernel: one class vector at a time, for rows whose classes are contiguous.
//
// Two sweeps of which only the first touches memory: pass 1 (row_stats) reads the row
// once, keeping an online maximum m per chunk of kChunkVecs vectors (Milakov and
// Gimelshein's running-max normaliser): a chunk whose max exceeds m rescales the sums
// by e^(m_old - m_new) before its own terms are added, so every term e^(x - m) <= 1 and
// nothing overflows or underflows. It can also store the terms in a per-thread scratch
// row that stays in cache; pass 2 (scale_row) turns that scratch row into the output
// row, each chunk scaled by e^(m_chunk - max).
//
// Exactness. The sum is kept as K + R: K counts the terms equal to the max (each
// exactly 1) and R adds the others, so lse - max = log1p(K - 1 + R) keeps the digits of
// a tiny loss (a confident row) that log(1 + R) would round away; every term is
// e^(x - m) with the rounding of x - m carried (vm::expm), so a term 40 below the max is
// as exact as one at the max. Float32 terms are summed in float32 over runs of 8 per lane
// and then in float64.
// Included by kernels.cpp only, compiled once per instruction set (rules in common/isa.hpp).
#pragma once

#include "common/simd.hpp"
#include "common/vecmath.hpp"
#include "engine/util.hpp"

namespace xent::engine::XENT_ISA_NS {
namespace {

// What pass 1 weighs the shifted logits with, for the sum D = sum_c a_c (x_c - m)
// (0 * -inf = 0, as the reference's safe_mul):
enum Weighting : int {
  kNone = 0,        // no D (plain softmax, sparse CE without smoothing)
  kOnes = 1,        // a_c = 1 (smoothing without class weights)
  kClassW = 2,      // a_c = w_c (smoothing with class weights)
  kTargets = 3,     // a_c = (1 - e) t_c + e / C (categorical)
  kTargetsW = 4,    // a_c = w_c ((1 - e) t_c + e / C)
};

template <class T>
struct RowStats {
  T m;            // the row max (lowest() when every entry is -inf)
  double k;       // entries equal to m (each term exactly 1)
  double rest;    // sum of e^(x - m) over the other entries
  double dot;     // D = sum_c a_c (x_c - m)
  double a;       // sum_c a_c
  i64 max_chunk;  // the chunk where m was reached
};

// Running sums of pass 1, lane by lane (float64; float32 terms reach them per chunk).
template <class T>
struct Acc {
  using Wd = typename Lanes<T>::Wide;
  Wd rest{}, k{}, dot{}, seen{};
};

// Add one vector of logits (and targets / class weights) to the chunk's lane sums.
// AT_MAX: the chunk may hold entries equal to the running max m (else all are below it, or NaN).
template <class T, bool STORE, int WEIGHT, bool MASKED, bool AT_MAX = true>
inline void step(const T* x, const T* t, const T* w, T keep_t, T ec, typename Lanes<T>::V mv, T* e_out,
                 typename Lanes<T>::V& r, typename Lanes<T>::V& kk, typename Lanes<T>::V& dd,
                 typename Lanes<T>::V& ss, typename Lanes<T>::I valid) {
  using V = typename Lanes<T>::V;
  V xv = loadu<V>(x);
  V e = vm::expm<kBias<T>>(xv, mv);  // e^(x - m) 2^B
  if (STORE) storeu(e_out, e);
  if (AT_MAX) {
    auto eq = xv == mv;
    if (MASKED) eq = eq & valid;
    r += select(eq, splat<V>(0), e);  // padded lanes hold -inf: e = 0
    kk += select(eq, splat<V>(1), splat<V>(0));
  } else {
    r += e;
  }
  if (WEIGHT == kNone) return;
  V a;
  if (WEIGHT == kOnes) {
    a = splat<V>(1);
  } else if (WEIGHT == kClassW) {
    a = loadu<V>(w);
  } else {
    a = loadu<V>(t) * keep_t + ec;
    if (WEIGHT == kTargetsW) a = a * loadu<V>(w);
  }
  if (MASKED) a = select(valid, a, splat<V>(0));
  dd += select(a == 0, splat<V>(0), a * (xv - mv));
  ss += a;
}

// Pass 1 over a contiguous row of C logits. With STORE, e_out[c] = e^(x_c - m_k) 2^B for c
// in chunk k and chunk_m[k] = m_k (e_out needs C rounded up to the lane width).
template <class T, bool STORE, int WEIGHT>
RowStats<T> row_stats(const T* x, i64 C, const T* t, const T* w, T keep_t, T ec, T* e_out, T* chunk_m) {
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  using Wd = typename Lanes<T>::Wide;
  constexpr i64 W = Lanes<T>::width;
  constexpr i64 L = W * kChunkVecs;
  Acc<T> acc;
  T m = lowest<T>();
  bool started = false;
  i64 max_chunk = 0;
  const I all = splat<I>(-1);

  auto raise_max = [&](T cm, i64 chunk) {
    if (!(cm > m)) return;
    if (started) {
      // Earlier terms were e^(x - m_old): rescale them to the new max.
      double f = vm::exp_f64(static_cast<double>(m) - static_cast<double>(cm));
      acc.rest = (acc.rest + acc.k * pow2<T>(kBias<T>)) * f;
      acc.k = Wd{};
      if (WEIGHT != kNone) {
        // D = sum a_c (x_c - m) moves by -(sum of a_c so far) (m_new - m_old); lanes that saw no
        // weight stay as they are (d may be inf after a run of -inf logits in float64).
        double d = static_cast<double>(cm) - static_cast<double>(m);
        acc.dot = acc.dot - select(acc.seen == 0.0, splat<Wd>(0.0), acc.seen * d);
      }
    }
    m = cm;
    max_chunk = chunk;
  };
  auto flush = [&](V r, V kk, V dd, V ss) {
    acc.rest += widen(r);
    acc.k += widen(kk);
    if (WEIGHT != kNone) {
      acc.dot += widen(dd);
      acc.seen += widen(ss);
    }
  };

  i64 j = 0, chunk = 0;
  for (; j + L <= C; j += L, ++chunk) {
    V cmv = loadu<V>(x + j);
    for (int v = 1; v < kChunkVecs; ++v) cmv = simd::vmax(cmv, loadu<V>(x + j + v * W));
    if (simd::any(cmv > splat<V>(m))) raise_max(hmax(cmv), chunk);  // the horizontal max only when needed
    started = true;
    if (STORE) chunk_m[chunk] = m;
    V mv = splat<V>(m), r{}, kk{}, dd{}, ss{};
    if (simd::any(cmv == mv)) {
      for (int v = 0; v < kChunkVecs; ++v) {
        i64 o = j + v * W;
        step<T, STORE, WEIGHT, false>(x + o, t + (t ? o : 0), w + (w ? o : 0), keep_t, ec, mv,
                                     e_out + (STORE ? o : 0), r, kk, dd, ss, all);
      }
    } else {  // every entry below the max (the usual chunk): no ties to count
      for (int v = 0; v < kChunkVecs; ++v) {
        i64 o = j + v * W;
        step<T, STORE, WEIGHT, false, false>(x + o, t + (t ? o : 0), w + (w ? o : 0), keep_t, ec, mv,
                                            e_out + (STORE ? o : 0), r, kk, dd, ss, all);
      }
    }
    flush(r, kk, dd, ss);
  }
  if (j < C) {  // the last, partial chunk: whole vectors, then one padded vector
    V cmv = splat<V>(lowest<T>());
    i64 c = j;
    for (; c + W <= C; c += W) cmv = simd::vmax(cmv, loadu<V>(x + c));
    T cm = hmax(cmv);
    for (; c < C; ++c) cm = x[c] > cm ? x[c] : cm;
    raise_max(cm, chunk);
    started = true;
    if (STORE) chunk_m[chunk] = m;
    V mv = splat<V>(m), r{}, kk{}, dd{}, ss{};
    for (; j + W <= C; j += W)
      step<T, STORE, WEIGHT, false>(x + j, t + (t ? j : 0), w + (w ? j : 0), keep_t, ec, mv,
                                   e_out + (STORE ? j : 0), r, kk, dd, ss, all);
    if (j < C) {
      T xp[W], tp[W], wp[W];
      i64 n = C - j;
      for (i64 l = 0; l < W; ++l) {
        xp[l] = l < n ? x[j + l] : -vm::inf_f32();
        tp[l] = (t && l < n) ? t[j + l] : T(0);
        wp[l] = (w && l < n) ? w[j + l] : T(0);
      }
      I valid = simd::iota<V>() < splat<V>(static_cast<T>(n));
      step<T, STORE, WEIGHT, true>(xp, tp, wp, keep_t, ec, mv, e_out + (STORE ? j : 0), r, kk, dd, ss, valid);
    }
    flush(r, kk, dd, ss);
  }
  RowStats<T> s;
  s.m = m;
  s.k = hsum(acc.k);
  s.rest = hsum(acc.rest) * pow2<T>(-kBias<T>);
  s.dot = WEIGHT != kNone ? hsum(acc.dot) : 0.0;
  s.a = WEIGHT != kNone ? hsum(acc.seen) : 0.0;
  s.max_chunk = max_chunk;
  return s;
}

// A row the fast path cannot take: NaN (the sum is NaN), +inf (the max is), or all -inf
// (no term equals the max).
template <class T>
inline bool needs_reference(const RowStats<T>& s) {
  return !(s.rest == s.rest) || s.k == 0 || !(static_cast<double>(s.m) < inf()) || !(s.dot == s.dot);
}

// ---------------------------------------------------------------- pass 2

// out[c] = (e[c] 2^-B) f_k - sub a_c, f_k = coef e^(m_k - max) for c in chunk k (e as pass 1
// stored it), with a_c = 1 (TARGETS false, w null), w_c (TARGETS false) or
// w_c ((1 - e) t_c + e / C) (TARGETS: categorical). The exact 2^-B comes first: folded into
// f_k, it could push f_k below the smallest normal for a chunk far below the row's max.
template <class T, bool TARGETS>
void scale_row(T* out, const T* e, const T* chunk_m, i64 C, double max, double coef, double sub, const T* t,
               const T* w, T keep_t, T ec) {
  using V = typename Lanes<T>::V;
  constexpr i64 W = Lanes<T>::width;
  constexpr i64 L = W * kChunkVecs;
  const T subt = static_cast<T>(sub), unscale = static_cast<T>(pow2<T>(-kBias<T>));
  const bool weighted = TARGETS || w;
  auto weight_v = [&](i64 c) {
    V a = TARGETS ? loadu<V>(t + c) * keep_t + ec : splat<V>(1);
    return w ? a * loadu<V>(w + c) : a;
  };
  auto weight = [&](i64 c) {
    T a = TARGETS ? t[c] * keep_t + ec : T(1);
    return w ? a * w[c] : a;
  };
  for (i64 j = 0, k = 0; j < C; j += L, ++k) {
    const T f = static_cast<T>(coef * vm::exp_f64(static_cast<double>(chunk_m[k]) - max));
    const V fv = splat<V>(f), sv = splat<V>(subt), uv = splat<V>(unscale);
    auto one = [&](i64 c) { out[c] = (e[c] * unscale) * f - (weighted ? weight(c) : T(1)) * subt; };
    auto vec = [&](i64 c) {
      const V g = (loadu<V>(e + c) * uv) * fv;
      return weighted ? g - weight_v(c) * sv : g - sv;
    };
    // Plain stores: measured, non-temporal ones lost (a fresh output's pages are zeroed into
    // the cache when first touched, and streaming then writes those lines out twice).
    const i64 end = imin(C, j + L);
    i64 c = j;
    for (; c + W <= end; c += W) storeu(out + c, vec(c));
    for (; c < end; ++c) one(c);
  }
}

}  // namespace
}  // namespace xent::engine::XENT_ISA_NS
