// The lanes kernel: W rows at a time, one per SIMD lane, for few classes (where a row is
// shorter than a few vectors) and for a class axis that is not the contiguous one (an
// (outer, classes, inner) layout, a transposed view) whose neighbouring rows are.
//
// A block of W rows is gathered into a (C, W) tile in per-thread scratch: plain vector
// loads when the rows are neighbours along a unit-stride axis, a transpose otherwise.
// Every class is then one vector, the max is taken over the cached tile, the terms are
// e^(x - max) 2^B with the same exactness rules as the row kernel (rows.hpp), and each
// row's finish (log1p, the label's term) runs on W rows at once. Outputs are formed in
// the tile and scattered back.
// Included by kernels.cpp only, compiled once per instruction set (rules in common/isa.hpp).
#pragma once

#include "common/simd.hpp"
#include "common/vecmath.hpp"
#include "engine/rows.hpp"
#include "engine/util.hpp"

namespace xent::engine::XENT_ISA_NS {
namespace {

// Fewer classes than this: rows across lanes (a row of the row kernel would be a few
// vectors and one horizontal reduction, log and exp of its own).
constexpr i64 kLanesBelow = 64;

// Tiles are (C, W): above this many classes a strided class axis goes row by row instead
// (a tile of 32768 float classes is 2 MiB, and a call holds up to three per thread).
constexpr i64 kLanesMaxTileClasses = i64{1} << 15;

// The kernel a call takes: lanes for few classes, and for a class axis other than the
// contiguous one when neighbouring rows are adjacent (unit inner stride).
inline bool use_lanes(i64 classes, const View& x, i64 inner) {
  return classes < kLanesBelow || (x.s1 != 1 && inner > 1 && x.s2 == 1 && classes <= kLanesMaxTileClasses);
}

// W rows (o, i); rows past the end repeat the last one (read, never written).
template <class T>
struct Block {
  static constexpr int W = Lanes<T>::width;
  int n;
  bool adjacent;  // the W rows are (o, i0 .. i0 + W - 1)
  i64 o[W], i[W];

  void set(i64 r0, i64 rows, i64 inner) {
    n = static_cast<int>(imin(W, rows - r0));
    i64 oo = r0 / inner, ii = r0 % inner;  // one division per block, then steps
    for (int l = 0; l < W; ++l) {
      o[l] = oo;
      i[l] = ii;
      if (l + 1 < n && ++ii == inner) {
        ii = 0;
        ++oo;
      }
    }
    adjacent = n == W && o[0] == o[W - 1] && i[W - 1] == i[0] + W - 1;
  }
};

// Lane offsets of the block's rows in a view, relative to row 0, if they fit int32.
template <class T>
bool lane_offsets(i64 s0, i64 s2, i64 s1, i64 C, const Block<T>& b, std::int32_t* idx) {
  constexpr int W = Block<T>::W;
  const i64 base = b.o[0] * s0 + b.i[0] * s2, span = (C > 0 ? C - 1 : 0) * (s1 < 0 ? -s1 : s1);
  for (int l = 0; l < W; ++l) {
    const i64 d = b.o[l] * s0 + b.i[l] * s2 - base;
    if (d + span > 2147483647 || d - span < -2147483647) return false;
    idx[l] = static_cast<std::int32_t>(d);
  }
  return true;
}

// tile[c W + l] = v(o_l, c, i_l): vector loads for adjacent rows, gathers (AVX2, AVX-512)
// or a transpose otherwise.
template <class T>
void gather_tile(const View& v, const Block<T>& b, i64 C, T* tile) {
  using V = typename Lanes<T>::V;
  constexpr int W = Block<T>::W;
  const T* base = static_cast<const T*>(v.data);
  const T* p = base + b.o[0] * v.s0 + b.i[0] * v.s2;
  if (b.adjacent && v.s2 == 1) {
    for (i64 c = 0; c < C; ++c) storeu(tile + c * W, loadu<V>(p + c * v.s1));
    return;
  }
  std::int32_t idx[W];
  if (W > 1 && lane_offsets(v.s0, v.s2, v.s1, C, b, idx)) {
    for (i64 c = 0; c < C; ++c) storeu(tile + c * W, simd::gather<V>(p + c * v.s1, idx));
    return;
  }
  for (int l = 0; l < W; ++l) {
    const T* q = base + b.o[l] * v.s0 + b.i[l] * v.s2;
    for (i64 c = 0; c < C; ++c) tile[c * W + l] = q[c * v.s1];
  }
}

// v(o_l, c, i_l) = tile[c W + l] for the block's n rows, except lanes where skip[l].
template <class T>
void scatter_tile(const OutView& v, const Block<T>& b, i64 C, const T* tile, const bool* skip) {
  using V = typename Lanes<T>::V;
  constexpr int W = Block<T>::W;
  T* base = static_cast<T*>(v.data);
  bool any_skip = false;
  for (int l = 0; l < b.n; ++l) any_skip = any_skip || skip[l];
  T* p = base + b.o[0] * v.s0 + b.i[0] * v.s2;
  if (b.n == W && !any_skip) {
    if (b.adjacent && v.s2 == 1) {
      for (i64 c = 0; c < C; ++c) storeu(p + c * v.s1, loadu<V>(tile + c * W));
      return;
    }
#if defined(__AVX512F__)
    std::int32_t idx[W];
    if (lane_offsets(v.s0, v.s2, v.s1, C, b, idx)) {
      for (i64 c = 0; c < C; ++c) simd::scatter(p + c * v.s1, idx, loadu<V>(tile + c * W));
      return;
    }
#endif
  }
  for (int l = 0; l < b.n; ++l) {
    if (skip[l]) continue;
    T* q = base + b.o[l] * v.s0 + b.i[l] * v.s2;
    for (i64 c = 0; c < C; ++c) q[c * v.s1] = tile[c * W + l];
  }
}

// Pass 1 over a tile: per lane (row), the RowStats of the row kernel as vectors, lse - max,
// the label's logit (LABEL, labels in `yl`, -1 for none) and an index where x equals the max
// (ARGMAX).
template <class T>
struct LaneStats {
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  using Wd = typename Lanes<T>::Wide;
  V m, xy;
  Wd k, rest, dot, a, lse;
  I argmax;

  // Rows the fast formulas cannot take (rows.hpp: needs_reference): ref[l] for the block's n
  // rows; returns whether any.
  bool reference_rows(int n, bool* ref) const {
    using D = typename Lanes<double>::V;
    constexpr int Hd = Lanes<double>::width;
    bool any = false;
    for (int h = 0; h < Lanes<T>::halves; ++h) {
      const D kh = simd::half(k, h), rh = simd::half(rest, h), dh = simd::half(dot, h);
      const D mh = simd::half(widen(m), h);
      const auto mask = (rh != rh) | (kh == 0.0) | (mh == vm::inf_f64()) | (dh != dh);
      for (int l = 0; l < Hd; ++l) {
        const int lane = h * Hd + l;
        ref[lane] = lane < n && simd::lane_i(mask, l) != 0;
        any = any || ref[lane];
      }
    }
    return any;
  }
  RowStats<T> row(int l) const {
    return {simd::lane(m, l), simd::lane(k, l), simd::lane(rest, l), simd::lane(dot, l), simd::lane(a, l), 0};
  }
};

template <class T, bool STORE, int WEIGHT, bool LABEL, bool ARGMAX>
LaneStats<T> lane_stats(const T* xt, const T* tt, i64 C, const T* cw, T keep_t, T ec, typename Lanes<T>::I yl,
                        T* et) {
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  using Wd = typename Lanes<T>::Wide;
  constexpr int W = Lanes<T>::width;
  LaneStats<T> s;
  V m = splat<V>(lowest<T>());
  for (i64 c = 0; c < C; ++c) m = simd::vmax(m, loadu<V>(xt + c * W));
  Wd rest{}, k{}, dot{}, asum{};
  V r{}, kk{}, dd{}, ss{}, xy{};
  I am = splat<I>(-1);
  for (i64 c = 0; c < C; ++c) {
    const V xv = loadu<V>(xt + c * W);
    const V e = vm::expm<kBias<T>>(xv, m);
    if (STORE) storeu(et + c * W, e);
    const auto eq = xv == m;
    r += select(eq, splat<V>(0), e);
    kk += select(eq, splat<V>(1), splat<V>(0));
    if (WEIGHT != kNone) {
      V a;
      if (WEIGHT == kOnes) a = splat<V>(1);
      else if (WEIGHT == kClassW) a = splat<V>(cw[c]);
      else a = loadu<V>(tt + c * W) * keep_t + ec;
      if (WEIGHT == kTargetsW) a = a * cw[c];
      dd += select(a == 0, splat<V>(0), a * (xv - m));
      ss += a;
    }
    if (LABEL) xy = select(yl == splat<I>(c), xv, xy);
    if (ARGMAX) am = select(eq, splat<I>(c), am);
    if ((c & 7) == 7 || c == C - 1) {  // float32 runs of 8 terms per lane, then float64
      rest += widen(r);
      k += widen(kk);
      r = V{};
      kk = V{};
      if (WEIGHT != kNone) {
        dot += widen(dd);
        asum += widen(ss);
        dd = V{};
        ss = V{};
      }
    }
  }
  s.m = m;
  s.xy = xy;
  s.k = k;
  s.rest = rest * pow2<T>(-kBias<T>);
  s.dot = dot;
  s.a = asum;
  s.argmax = am;
  // lse - max = log1p(K - 1 + R) for all W rows at once (garbage in reference rows).
  using D = typename Lanes<double>::V;
  for (int h = 0; h < Lanes<T>::halves; ++h) {
    const D kh = simd::half(k, h);
    simd::set_half(s.lse, h, vm::log1p_pos_f64x(select(kh >= 1.0, (kh - 1.0) + simd::half(s.rest, h), splat<D>(0.0))));
  }
  return s;
}

// The outputs of a block from its terms et: gt[c W + l] = (e 2^-B) coef_l - sub_l a_c,l, with
// a_c = w_c (TARGETS false; 1 without class weights) or w_c ((1 - e) t_c + e / C) (TARGETS), and
// class fix_l set to fix_value_l (fix_l = -1: none). gt may be et.
// ref[l]: row l (of the block's n) needs the reference's rules; returns whether any does.
template <class T>
bool mark_reference(const LaneStats<T>& s, const Block<T>& b, bool* ref) {
  return s.reference_rows(b.n, ref);
}

template <class T, bool TARGETS>
void lane_outputs(T* gt, const T* et, const T* tt, i64 C, const T* cw, T keep_t, T ec, typename Lanes<T>::V coef,
                  typename Lanes<T>::V sub, typename Lanes<T>::I fix, typename Lanes<T>::V fix_value) {
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  constexpr int W = Lanes<T>::width;
  const V uv = splat<V>(static_cast<T>(pow2<T>(-kBias<T>)));
  for (i64 c = 0; c < C; ++c) {
    V a;
    if (TARGETS) {
      a = loadu<V>(tt + c * W) * keep_t + ec;
      if (cw) a = a * cw[c];
    } else {
      a = splat<V>(cw ? cw[c] : T(1));
    }
    const V g = (loadu<V>(et + c * W) * uv) * coef - sub * a;
    storeu(gt + c * W, select(fix == splat<I>(c), fix_value, g));
  }
}

}  // namespace
}  // namespace xent::engine::XENT_ISA_NS
