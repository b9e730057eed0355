// The engine kernels, compiled once per instruction set (rules in common/isa.hpp).
//
// One row (class vector) at a time, in two sweeps of which only the first touches
// memory: pass 1 reads the row once, keeping an online maximum m per chunk of
// kChunk logits (Milakov and Gimelshein's running-max normaliser): a chunk whose max
// exceeds m rescales the sums by e^(m_old - m_new) before its own terms are added,
// so every term e^(x - m) <= 1 and nothing overflows or underflows. It also stores
// the terms (for the gradient or the softmax) in a per-thread scratch row that stays
// in cache. Pass 2 turns that scratch row into the output row, each chunk scaled by
// e^(m_chunk - max). Rows whose classes are not contiguous are gathered into scratch
// first (and their outputs scattered back).
//
// Exactness. The sum is kept as K + R: K counts the terms equal to the max (each
// exactly 1) and R adds the others, so lse - max = log1p(K - 1 + R) keeps the digits
// of a tiny loss (a confident row) that log(1 + R) would round away; every term is
// e^(x - m) with the rounding of x - m carried (vm::expm), so a term 40 below the max
// is as exact as one at the max. Loss = (lse - max) - (x_y - max): two non-negative
// parts, no cancellation. The gradient at the label of a confident row is
// -(1 - p_y) = -(K - 1 + R) / (K + R), formed from R, not as p_y - 1. Float32 terms
// are summed in float32 over 8-term lane runs and then in float64.
#include "engine/kernels.hpp"

#include "common/isa.hpp"
#include "common/parallel.hpp"
#include "common/simd.hpp"
#include "common/vecmath.hpp"

namespace xent::engine::XENT_ISA_NS {
namespace {

using simd::hmax;
using simd::hsum;
using simd::Lanes;
using simd::loadu;
using simd::select;
using simd::splat;
using simd::storeu;
using simd::widen;

constexpr int kChunkVecs = 8;  // vectors per chunk of the online max

// Pass 1 stores and sums the terms scaled by 2^B (vm::ExpmScale: float 2^64, double 2^512),
// so that the terms of a confident row, far below the smallest normal number, still count.
template <class T>
constexpr int kBias = vm::ExpmScale<T>::bits;
template <class T>
inline double pow2(int b) {
  return simd::float_from_bits(static_cast<std::int64_t>(1023 + b) << 52);
}

template <class T>
inline T lowest();
template <>
inline float lowest<float>() {
  return -3.40282346638528859812e+38f;
}
template <>
inline double lowest<double>() {
  return -1.7976931348623157e308;
}
inline double inf() { return vm::inf_f64(); }
inline double nan() { return simd::float_from_bits(std::int64_t{0x7FF8000000000000LL}); }
inline bool finite(double v) { return v - v == 0.0; }
inline i64 imin(i64 a, i64 b) { return a < b ? a : b; }
inline i64 round_up(i64 n, i64 m) { return (n + m - 1) / m * m; }

template <class T>
inline const T* at(const View& v, i64 o, i64 i) {
  return static_cast<const T*>(v.data) + o * v.s0 + i * v.s2;
}
template <class T>
inline T* at(const OutView& v, i64 o, i64 i) {
  return static_cast<T*>(v.data) + o * v.s0 + i * v.s2;
}

template <class T>
void gather(T* dst, const T* src, i64 stride, i64 n) {
  for (i64 c = 0; c < n; ++c) dst[c] = src[c * stride];
}
template <class T>
void scatter(T* dst, i64 stride, const T* src, i64 n) {
  for (i64 c = 0; c < n; ++c) dst[c * stride] = src[c];
}
template <class T>
void fill(T* dst, i64 stride, i64 n, T v) {
  for (i64 c = 0; c < n; ++c) dst[c * stride] = v;
}

// A row as a contiguous array: the row itself, or a copy in `buf`.
template <class T>
const T* contiguous(const T* row, i64 stride, i64 n, T* buf) {
  if (stride == 1) return row;
  gather(buf, row, stride, n);
  return buf;
}

// ---------------------------------------------------------------- pass 1

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
template <class T, bool STORE, int WEIGHT, bool MASKED>
inline void step(const T* x, const T* t, const T* w, T keep_t, T ec, typename Lanes<T>::V mv, T* e_out,
                 typename Lanes<T>::V& r, typename Lanes<T>::V& kk, typename Lanes<T>::V& dd,
                 typename Lanes<T>::V& ss, typename Lanes<T>::I valid) {
  using V = typename Lanes<T>::V;
  V xv = loadu<V>(x);
  V e = vm::expm<kBias<T>>(xv, mv);  // e^(x - m) 2^B
  if (STORE) storeu(e_out, e);
  auto eq = xv == mv;
  if (MASKED) eq = eq & valid;
  r += select(eq, splat<V>(0), e);  // padded lanes hold -inf: e = 0
  kk += select(eq, splat<V>(1), splat<V>(0));
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
    raise_max(hmax(cmv), chunk);
    started = true;
    if (STORE) chunk_m[chunk] = m;
    V mv = splat<V>(m), r{}, kk{}, dd{}, ss{};
    for (int v = 0; v < kChunkVecs; ++v) {
      i64 o = j + v * W;
      step<T, STORE, WEIGHT, false>(x + o, t + (t ? o : 0), w + (w ? o : 0), keep_t, ec, mv,
                                   e_out + (STORE ? o : 0), r, kk, dd, ss, all);
    }
    flush(r, kk, dd, ss);
  }
  if (j < C) {  // the last, partial chunk: whole vectors, then one padded vector
    T cm = x[j];
    for (i64 c = j + 1; c < C; ++c) cm = x[c] > cm ? x[c] : cm;
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

// out[c] = (e[c] 2^-B) f_k - sub w_c (w null: - sub), f_k = coef e^(m_k - max) for c in chunk k
// (e as pass 1 stored it). The exact 2^-B comes first: folded into f_k, it could push f_k
// below the smallest normal for a chunk far below the row's max.
template <class T>
void scale_row(T* out, const T* e, const T* chunk_m, i64 C, double max, double coef, double sub, const T* w) {
  using V = typename Lanes<T>::V;
  constexpr i64 W = Lanes<T>::width;
  constexpr i64 L = W * kChunkVecs;
  const T subt = static_cast<T>(sub), unscale = static_cast<T>(pow2<T>(-kBias<T>));
  for (i64 j = 0, k = 0; j < C; j += L, ++k) {
    const T f = static_cast<T>(coef * vm::exp_f64(static_cast<double>(chunk_m[k]) - max));
    const V fv = splat<V>(f), sv = splat<V>(subt), uv = splat<V>(unscale);
    i64 end = imin(C, j + L), c = j;
    if (w) {
      for (; c + W <= end; c += W) storeu(out + c, (loadu<V>(e + c) * uv) * fv - loadu<V>(w + c) * sv);
      for (; c < end; ++c) out[c] = (e[c] * unscale) * f - w[c] * subt;
    } else {
      for (; c + W <= end; c += W) storeu(out + c, (loadu<V>(e + c) * uv) * fv - sv);
      for (; c < end; ++c) out[c] = (e[c] * unscale) * f - subt;
    }
  }
}

// out[c] = e[c] f_k - sub a_c with a_c = w_c ((1 - e) t_c + e / C) (categorical).
template <class T>
void scale_row_targets(T* out, const T* e, const T* chunk_m, i64 C, double max, double coef, double sub,
                       const T* t, const T* w, T keep_t, T ec) {
  using V = typename Lanes<T>::V;
  constexpr i64 W = Lanes<T>::width;
  constexpr i64 L = W * kChunkVecs;
  const T subt = static_cast<T>(sub), unscale = static_cast<T>(pow2<T>(-kBias<T>));
  for (i64 j = 0, k = 0; j < C; j += L, ++k) {
    const T f = static_cast<T>(coef * vm::exp_f64(static_cast<double>(chunk_m[k]) - max));
    const V fv = splat<V>(f), sv = splat<V>(subt), uv = splat<V>(unscale);
    i64 end = imin(C, j + L), c = j;
    for (; c + W <= end; c += W) {
      V a = loadu<V>(t + c) * keep_t + ec;
      if (w) a = a * loadu<V>(w + c);
      storeu(out + c, (loadu<V>(e + c) * uv) * fv - a * sv);
    }
    for (; c < end; ++c) {
      T a = t[c] * keep_t + ec;
      if (w) a = a * w[c];
      out[c] = (e[c] * unscale) * f - a * subt;
    }
  }
}

// ---------------------------------------------------------------- the reference's rules

// log1p on the reference's `rest` (>= -1, or inf / NaN for rows with +inf / NaN).
inline double rest_log1p(double r) {
  if (!(r == r) || r < -1.0) return nan();
  if (r == -1.0) return -inf();
  if (r == inf()) return inf();
  if (r < 0.0) return vm::log_f64(1.0 + r);
  return vm::log1p_pos_f64(r);
}

// The reference's shift (xent.primitives._softmax_parts): the row max, NaN if any entry
// is NaN, replaced by 0 when not finite; rest = sum of the terms not at the shift + (number
// at the shift - 1). Terms are rounded to T as the reference's are (overflow included).
template <class T>
struct RefRow {
  double m, rest, lse;
};

template <class T>
RefRow<T> reference_row(const T* x, i64 xs, i64 C) {
  double m = -inf();
  bool nan = false;
  for (i64 c = 0; c < C; ++c) {
    double v = static_cast<double>(x[c * xs]);
    if (v != v) nan = true;
    else if (v > m) m = v;
  }
  if (nan || !finite(m)) m = 0.0;
  double n_max = 0.0, rest = 0.0;
  for (i64 c = 0; c < C; ++c) {
    double sh = static_cast<double>(x[c * xs]) - m;
    if (sh == 0.0) n_max += 1.0;
    else rest += static_cast<double>(static_cast<T>(vm::exp_f64(sh)));
  }
  rest += n_max - 1.0;
  return {m, rest, rest_log1p(rest)};
}

template <class T>
inline double ref_term(const T* x, double m) {
  return static_cast<double>(static_cast<T>(vm::exp_f64(static_cast<double>(*x) - m)));
}

// ---------------------------------------------------------------- running the tasks

// One kernel call: its arguments, what every task shares, and a failure flag (scratch memory).
template <class Args>
struct Job {
  const Args* a;
  double wsum;  // sparse: the sum of the class weights (C without them)
  int status;
};

// Run task(job, t) for every task of the call's row partition; 0, or 1 if a task had no scratch.
template <class Args>
int run_rows(const Args& a, TaskFn task, double wsum = 0.0) {
  Job<Args> job{&a, wsum, 0};
  parallel_for(a.threads, static_cast<std::size_t>(n_tasks(a.outer * a.inner, a.classes)), task, &job);
  return job.status;
}

// ---------------------------------------------------------------- softmax family

template <class T>
void softmax_reference(const SoftmaxArgs& a, const T* xr, T* out, i64 os) {
  const i64 C = a.classes, xs = a.x.s1;
  RefRow<T> rr = reference_row(xr, xs, C);
  if (a.kind == kLogsumexp) {
    *out = static_cast<T>(rr.m + rr.lse);
  } else if (a.kind == kLogSoftmax) {
    for (i64 c = 0; c < C; ++c) out[c * os] = static_cast<T>((static_cast<double>(xr[c * xs]) - rr.m) - rr.lse);
  } else {
    // xent.primitives._softmax: e = exp(x - m), e / sum(e) in T.
    double s = 0.0;
    for (i64 c = 0; c < C; ++c) s += ref_term(xr + c * xs, rr.m);
    T st = static_cast<T>(s);
    for (i64 c = 0; c < C; ++c) out[c * os] = static_cast<T>(static_cast<T>(ref_term(xr + c * xs, rr.m)) / st);
  }
}

template <class T>
void softmax_task(void* vctx, std::size_t task) {
  auto& ctx = *static_cast<Job<SoftmaxArgs>*>(vctx);
  const SoftmaxArgs& a = *ctx.a;
  using V = typename Lanes<T>::V;
  constexpr i64 W = Lanes<T>::width;
  const i64 C = a.classes, I = a.inner, rows = a.outer * I;
  const i64 per = rows_per_task(C), r0 = static_cast<i64>(task) * per, r1 = imin(rows, r0 + per);
  const i64 cp = round_up(C, W) + W, n_chunks = (C + W * kChunkVecs - 1) / (W * kChunkVecs);
  const bool store = a.kind == kSoftmax;
  T* scratch = static_cast<T*>(thread_scratch(sizeof(T) * (3 * cp + n_chunks + 1)));
  if (!scratch) {
    ctx.status = 1;
    return;
  }
  T *xbuf = scratch, *ebuf = scratch + cp, *obuf = scratch + 2 * cp, *chunk_m = scratch + 3 * cp;
  for (i64 r = r0; r < r1; ++r) {
    const i64 o = r / I, i = r % I;
    const T* xr = at<T>(a.x, o, i);
    T* outr = at<T>(a.out, o, i);
    const T* x = contiguous(xr, a.x.s1, C, xbuf);
    RowStats<T> s = store ? row_stats<T, true, kNone>(x, C, nullptr, nullptr, T(0), T(0), ebuf, chunk_m)
                          : row_stats<T, false, kNone>(x, C, nullptr, nullptr, T(0), T(0), nullptr, nullptr);
    if (needs_reference(s)) {
      softmax_reference<T>(a, xr, outr, a.out.s1);
      continue;
    }
    const double max = static_cast<double>(s.m);
    const double s1 = (s.k - 1.0) + s.rest, lse = vm::log1p_pos_f64(s1);
    if (a.kind == kLogsumexp) {
      *outr = static_cast<T>(max + lse);
      continue;
    }
    T* out = a.out.s1 == 1 ? outr : obuf;
    if (a.kind == kLogSoftmax) {
      // (x - max) - lse: both parts rounded once, and |result| >= either of them.
      const T mt = s.m, lt = static_cast<T>(lse);
      const V mv = splat<V>(mt), lv = splat<V>(lt);
      i64 c = 0;
      for (; c + W <= C; c += W) storeu(out + c, (loadu<V>(x + c) - mv) - lv);
      for (; c < C; ++c) out[c] = (x[c] - mt) - lt;
    } else {
      scale_row<T>(out, ebuf, chunk_m, C, max, 1.0 / (s.k + s.rest), 0.0, nullptr);
    }
    if (out != outr) scatter(outr, a.out.s1, out, C);
  }
}

template <class T>
int softmax(const SoftmaxArgs& a) {
  return run_rows(a, softmax_task<T>);
}

// ---------------------------------------------------------------- sparse cross-entropy

struct Label {
  i64 y;
  bool valid;   // 0 <= y < C
  double sk;    // sample weight, 0 when ignored
  double a_y;   // weight of the label's own log-probability: (1 - e) w_y, 0 without a label term
};

template <class T>
inline Label label_of(const SparseArgs& a, i64 o, i64 i) {
  Label l;
  l.y = *at<i64>(a.labels, o, i);
  const bool kept = !(a.has_ignore && l.y == a.ignore_index);
  l.valid = l.y >= 0 && l.y < a.classes;
  const double s = a.weights.data ? *at<double>(a.weights, o, i) : 1.0;
  l.sk = kept ? s : 0.0;
  const T* cw = static_cast<const T*>(a.class_weights);
  const double wy = (l.valid && cw) ? static_cast<double>(cw[l.y]) : 1.0;
  l.a_y = (l.valid && kept) ? (1.0 - a.smoothing) * wy : 0.0;
  return l;
}

// The reference's rules (xent.losses._categorical_core.sparse_core) for one row.
template <class T>
double sparse_reference(const SparseArgs& a, double wsum, const T* xr, const Label& lb, double scale, T* g) {
  const i64 C = a.classes, xs = a.x.s1;
  const T* cw = static_cast<const T*>(a.class_weights);
  const double e = a.smoothing, ec = e / static_cast<double>(C);
  RefRow<T> rr = reference_row(xr, xs, C);
  double per = 0.0;
  if (lb.a_y != 0.0) per = -lb.a_y * ((static_cast<double>(xr[lb.y * xs]) - rr.m) - rr.lse);
  if (e != 0.0) {
    double sw = 0.0;
    for (i64 c = 0; c < C; ++c) {
      const double sh = static_cast<double>(xr[c * xs]) - rr.m;
      const double wc = cw ? static_cast<double>(cw[c]) : 1.0;
      sw += wc == 0.0 ? 0.0 : wc * sh;
    }
    per -= ec * (sw - wsum * rr.lse);
  }
  if (g) {
    const double q = (scale * lb.a_y + scale * ec * wsum) / (1.0 + rr.rest);
    for (i64 c = 0; c < C; ++c) {
      double ac = scale * ec * (cw ? static_cast<double>(cw[c]) : 1.0);
      if (lb.valid && c == lb.y) ac += scale * lb.a_y;
      g[c * a.grad.s1] = static_cast<T>(ref_term(xr + c * xs, rr.m) * q - ac);
    }
  }
  return per;
}

template <class T, bool STORE>
RowStats<T> sparse_stats(const T* x, i64 C, const T* cw, double e, T* ebuf, T* chunk_m) {
  if (e == 0.0) return row_stats<T, STORE, kNone>(x, C, nullptr, nullptr, T(0), T(0), ebuf, chunk_m);
  if (cw) return row_stats<T, STORE, kClassW>(x, C, nullptr, cw, T(0), T(0), ebuf, chunk_m);
  return row_stats<T, STORE, kOnes>(x, C, nullptr, nullptr, T(0), T(0), ebuf, chunk_m);
}

template <class T>
void sparse_task(void* vctx, std::size_t task) {
  auto& ctx = *static_cast<Job<SparseArgs>*>(vctx);
  const SparseArgs& a = *ctx.a;
  constexpr i64 W = Lanes<T>::width;
  const i64 C = a.classes, I = a.inner, rows = a.outer * I;
  const i64 per = rows_per_task(C), r0 = static_cast<i64>(task) * per, r1 = imin(rows, r0 + per);
  const i64 cp = round_up(C, W) + W, n_chunks = (C + W * kChunkVecs - 1) / (W * kChunkVecs);
  const bool grad = a.grad.data != nullptr;
  const T* cw = static_cast<const T*>(a.class_weights);
  const double e = a.smoothing, ec = e / static_cast<double>(C), wsum = ctx.wsum;
  T* scratch = static_cast<T*>(thread_scratch(sizeof(T) * (3 * cp + n_chunks + 1)));
  if (!scratch) {
    ctx.status = 1;
    return;
  }
  T *xbuf = scratch, *ebuf = scratch + cp, *gbuf = scratch + 2 * cp, *chunk_m = scratch + 3 * cp;
  double total = 0.0;
  for (i64 r = r0; r < r1; ++r) {
    const i64 o = r / I, i = r % I;
    const Label lb = label_of<T>(a, o, i);
    T* gr = grad ? at<T>(a.grad, o, i) : nullptr;
    const double scale = lb.sk * a.factor;
    if (lb.sk == 0.0) {  // ignored or zero weight: loss 0 and gradient 0, whatever the logits
      if (gr) fill(gr, a.grad.s1, C, T(0));
      if (a.loss.data) *at<T>(a.loss, o, i) = T(0);
      continue;
    }
    const T* xr = at<T>(a.x, o, i);
    const T* x = contiguous(xr, a.x.s1, C, xbuf);
    const bool want_g = gr && scale != 0.0;
    RowStats<T> s = want_g ? sparse_stats<T, true>(x, C, cw, e, ebuf, chunk_m)
                           : sparse_stats<T, false>(x, C, cw, e, nullptr, nullptr);
    double l;
    if (needs_reference(s)) {
      l = sparse_reference<T>(a, wsum, xr, lb, scale, want_g ? gr : nullptr);
      if (gr && !want_g) fill(gr, a.grad.s1, C, T(0));
    } else {
      const double max = static_cast<double>(s.m);
      const double s1 = (s.k - 1.0) + s.rest, lse = vm::log1p_pos_f64(s1), sum = s.k + s.rest;
      const double dy = lb.valid ? static_cast<double>(x[lb.y]) - max : 0.0;
      l = 0.0;
      if (lb.a_y != 0.0) l += lb.a_y * (lse - dy);   // -(1 - e) w_y log p_y
      if (e != 0.0) l += ec * (wsum * lse - s.dot);  // -(e / C) sum_c w_c log p_c, both parts >= 0
      if (gr && !want_g) {
        fill(gr, a.grad.s1, C, T(0));
      } else if (want_g) {
        const double big_a = lb.a_y + ec * wsum;  // sum_c w_c q_c
        T* g = a.grad.s1 == 1 ? gr : gbuf;
        scale_row<T>(g, ebuf, chunk_m, C, max, scale * big_a / sum, scale * ec, cw);
        if (lb.valid) {
          const double wy = cw ? static_cast<double>(cw[lb.y]) : 1.0;
          double gy;
          if (dy == 0.0 && s.k == 1.0)  // p_y = 1 / sum: p_y big_a - a_y without cancellation
            gy = scale * ((ec * wsum - lb.a_y * s1) / sum - ec * wy);
          else
            gy = scale * (vm::expm_f64(static_cast<double>(x[lb.y]), max) / sum * big_a - ec * wy - lb.a_y);
          g[lb.y] = static_cast<T>(gy);
        }
        if (g != gr) scatter(gr, a.grad.s1, g, C);
      }
    }
    const double wl = lb.sk * l;
    total += wl;
    if (a.loss.data) *at<T>(a.loss, o, i) = static_cast<T>(wl);
  }
  a.task_sums[task] = total;
}

template <class T>
double class_weight_sum(const void* class_weights, i64 C) {
  if (!class_weights) return static_cast<double>(C);
  const T* cw = static_cast<const T*>(class_weights);
  double s = 0.0;
  for (i64 c = 0; c < C; ++c) s += static_cast<double>(cw[c]);
  return s;
}

template <class T>
int sparse(const SparseArgs& a) {
  return run_rows(a, sparse_task<T>, class_weight_sum<T>(a.class_weights, a.classes));
}

template <class T>
void sparse_denominator_task(void* vctx, std::size_t task) {
  const SparseArgs& a = *static_cast<Job<SparseArgs>*>(vctx)->a;
  const i64 I = a.inner, rows = a.outer * I, per = rows_per_task(a.classes);
  const i64 r0 = static_cast<i64>(task) * per, r1 = imin(rows, r0 + per);
  const T* cw = static_cast<const T*>(a.class_weights);
  double total = 0.0;
  for (i64 r = r0; r < r1; ++r) {
    const i64 o = r / I, i = r % I;
    const i64 y = *at<i64>(a.labels, o, i);
    if (a.has_ignore && y == a.ignore_index) continue;
    const double s = a.weights.data ? *at<double>(a.weights, o, i) : 1.0;
    // The reference's norm: w_y for labels in range, 0 outside (class weights); 1 without them.
    const double c = cw ? ((y >= 0 && y < a.classes) ? static_cast<double>(cw[y]) : 0.0) : 1.0;
    total += s * c;
  }
  a.task_sums[task] = total;
}

template <class T>
int sparse_denominator(const SparseArgs& a) {
  return run_rows(a, sparse_denominator_task<T>);
}

// ---------------------------------------------------------------- categorical cross-entropy

// The reference's rules (xent.losses._categorical_core.categorical_core) for one row.
template <class T>
double categorical_reference(const CategoricalArgs& a, const T* xr, const T* tr, double scale, T* g) {
  const i64 C = a.classes, xs = a.x.s1, ts = a.targets.s1;
  const T* cw = static_cast<const T*>(a.class_weights);
  const double e = a.smoothing, ec = e / static_cast<double>(C);
  RefRow<T> rr = reference_row(xr, xs, C);
  double per = 0.0, big_a = 0.0;
  for (i64 c = 0; c < C; ++c) {
    double ac = (1.0 - e) * static_cast<double>(tr[c * ts]) + ec;
    if (cw) ac *= static_cast<double>(cw[c]);
    big_a += ac;
    const double logp = (static_cast<double>(xr[c * xs]) - rr.m) - rr.lse;
    per -= ac == 0.0 ? 0.0 : ac * logp;
  }
  if (g) {
    const double q = big_a / (1.0 + rr.rest);
    for (i64 c = 0; c < C; ++c) {
      double ac = (1.0 - e) * static_cast<double>(tr[c * ts]) + ec;
      if (cw) ac *= static_cast<double>(cw[c]);
      g[c * a.grad.s1] = static_cast<T>(scale * (ref_term(xr + c * xs, rr.m) * q - ac));
    }
  }
  return per;
}

template <class T, bool STORE>
RowStats<T> categorical_stats(const T* x, i64 C, const T* t, const T* cw, T keep_t, T ec, T* ebuf, T* chunk_m) {
  if (cw) return row_stats<T, STORE, kTargetsW>(x, C, t, cw, keep_t, ec, ebuf, chunk_m);
  return row_stats<T, STORE, kTargets>(x, C, t, nullptr, keep_t, ec, ebuf, chunk_m);
}

template <class T>
void categorical_task(void* vctx, std::size_t task) {
  auto& ctx = *static_cast<Job<CategoricalArgs>*>(vctx);
  const CategoricalArgs& a = *ctx.a;
  constexpr i64 W = Lanes<T>::width;
  constexpr i64 L = W * kChunkVecs;
  const i64 C = a.classes, I = a.inner, rows = a.outer * I;
  const i64 per = rows_per_task(C), r0 = static_cast<i64>(task) * per, r1 = imin(rows, r0 + per);
  const i64 cp = round_up(C, W) + W, n_chunks = (C + L - 1) / L;
  const bool grad = a.grad.data != nullptr;
  const T* cw = static_cast<const T*>(a.class_weights);
  const double e = a.smoothing, ec = e / static_cast<double>(C);
  const T keep_t = static_cast<T>(1.0 - e), ect = static_cast<T>(ec);
  T* scratch = static_cast<T*>(thread_scratch(sizeof(T) * (4 * cp + n_chunks + 1)));
  if (!scratch) {
    ctx.status = 1;
    return;
  }
  T *xbuf = scratch, *tbuf = scratch + cp, *ebuf = scratch + 2 * cp, *gbuf = scratch + 3 * cp;
  T* chunk_m = scratch + 4 * cp;
  double total = 0.0;
  for (i64 r = r0; r < r1; ++r) {
    const i64 o = r / I, i = r % I;
    const double sk = a.weights.data ? *at<double>(a.weights, o, i) : 1.0;
    T* gr = grad ? at<T>(a.grad, o, i) : nullptr;
    const double scale = sk * a.factor;
    if (sk == 0.0) {
      if (gr) fill(gr, a.grad.s1, C, T(0));
      if (a.loss.data) *at<T>(a.loss, o, i) = T(0);
      continue;
    }
    const T* xr = at<T>(a.x, o, i);
    const T* trow = at<T>(a.targets, o, i);
    const T* x = contiguous(xr, a.x.s1, C, xbuf);
    const T* t = contiguous(trow, a.targets.s1, C, tbuf);
    const bool want_g = gr && scale != 0.0;
    RowStats<T> s = want_g ? categorical_stats<T, true>(x, C, t, cw, keep_t, ect, ebuf, chunk_m)
                           : categorical_stats<T, false>(x, C, t, cw, keep_t, ect, nullptr, nullptr);
    double l;
    if (needs_reference(s)) {
      l = categorical_reference<T>(a, xr, trow, scale, want_g ? gr : nullptr);
      if (gr && !want_g) fill(gr, a.grad.s1, C, T(0));
    } else {
      const double max = static_cast<double>(s.m);
      const double s1 = (s.k - 1.0) + s.rest, lse = vm::log1p_pos_f64(s1), sum = s.k + s.rest;
      l = s.a * lse - s.dot;  // sum_c a_c (lse - (x_c - max)): both parts >= 0
      if (gr && !want_g) {
        fill(gr, a.grad.s1, C, T(0));
      } else if (want_g) {
        T* g = a.grad.s1 == 1 ? gr : gbuf;
        scale_row_targets<T>(g, ebuf, chunk_m, C, max, scale * s.a / sum, scale, t, cw, keep_t, ect);
        if (s.k == 1.0) {
          // The one entry at the max: p = 1 / sum, so A p - a = ((A - a) - a s1) / sum.
          i64 j = s.max_chunk * L;
          const i64 end = imin(C, j + L);
          while (j < end && !(x[j] == s.m)) ++j;
          if (j < end) {
            double aj = (1.0 - e) * static_cast<double>(t[j]) + ec;
            if (cw) aj *= static_cast<double>(cw[j]);
            g[j] = static_cast<T>(scale * (((s.a - aj) - aj * s1) / sum));
          }
        }
        if (g != gr) scatter(gr, a.grad.s1, g, C);
      }
    }
    const double wl = sk * l;
    total += wl;
    if (a.loss.data) *at<T>(a.loss, o, i) = static_cast<T>(wl);
  }
  a.task_sums[task] = total;
}

template <class T>
int categorical(const CategoricalArgs& a) {
  return run_rows(a, categorical_task<T>);
}

template <class T>
void categorical_denominator_task(void* vctx, std::size_t task) {
  const CategoricalArgs& a = *static_cast<Job<CategoricalArgs>*>(vctx)->a;
  const i64 C = a.classes, I = a.inner, rows = a.outer * I, per = rows_per_task(C);
  const i64 r0 = static_cast<i64>(task) * per, r1 = imin(rows, r0 + per);
  const T* cw = static_cast<const T*>(a.class_weights);
  double total = 0.0;
  for (i64 r = r0; r < r1; ++r) {
    const i64 o = r / I, i = r % I;
    const double s = a.weights.data ? *at<double>(a.weights, o, i) : 1.0;
    if (s == 0.0) continue;
    const T* tr = at<T>(a.targets, o, i);
    double n = 0.0;
    for (i64 c = 0; c < C; ++c) n += static_cast<double>(tr[c * a.targets.s1]) * (cw ? static_cast<double>(cw[c]) : 1.0);
    total += s * n;
  }
  a.task_sums[task] = total;
}

template <class T>
int categorical_denominator(const CategoricalArgs& a) {
  return run_rows(a, categorical_denominator_task<T>);
}

// ---------------------------------------------------------------- binary cross-entropy

template <class T>
struct BinaryCtx {
  const BinaryArgs* a;
};

// Elementwise binary CE on lanes of doubles (Wd = double or a double vector), the reference's
// formulas with its 0 * inf = 0 rule: y' = y (1 - e) + e / 2, a = pw y', b = 1 - y', L = log1p(e^-|z|),
//   l = (a + b) L - a min(z, 0) + b max(z, 0)    (every term >= 0: nothing cancels)
//   g = b sigmoid(z) - a sigmoid(-z)
template <class Wd>
inline void binary_lanes(Wd z, Wd y, Wd sw, Wd pw, double keep, double half_e, Wd& loss, Wd& grad) {
  const Wd zero = splat<Wd>(0.0), one = splat<Wd>(1.0);
  const Wd ys = y * keep + half_e;
  const Wd a = ys * pw, b = one - ys;
  const Wd abs_z = select(z < 0.0, -z, z);
  const Wd ex = vm::exp_f64x(-abs_z);  // e^-|z| <= 1, never overflows
  const Wd lg = vm::log1p_f64x(ex);
  const Wd neg = select(z < 0.0, z, zero), pos = select(z > 0.0, z, zero);
  Wd l = (a + b) * lg - select(a == 0.0, zero, a * neg) + select(b == 0.0, zero, b * pos);
  loss = select(sw == 0.0, zero, sw * l);
  const Wd r = one / (one + ex);
  const Wd small = ex * r;  // the smaller of sigmoid(z) and sigmoid(-z)
  const Wd p = select(z >= 0.0, r, small), q = select(z >= 0.0, small, r);
  grad = select(sw == 0.0, zero, (b * p - a * q) * sw);
}

template <class T>
inline T binary_at(const View& v, i64 r, i64 c, T dflt) {
  return v.data ? static_cast<const T*>(v.data)[r * v.s0 + c * v.s1] : dflt;
}

template <class T>
void binary_task(void* vctx, std::size_t task) {
  const BinaryArgs& a = *static_cast<BinaryCtx<T>*>(vctx)->a;
  using V = typename Lanes<T>::V;
  using Wd = typename Lanes<T>::Wide;
  constexpr i64 W = Lanes<T>::width;
  const i64 n = a.rows * a.cols, k0 = static_cast<i64>(task) * kTaskElements, k1 = imin(n, k0 + kTaskElements);
  const double keep = 1.0 - a.smoothing, half_e = a.smoothing / 2.0;
  const bool grad = a.grad.data != nullptr, want_loss = a.loss.data != nullptr;
  Wd total{};
  double total_tail = 0.0;
  // Row by row over this task's stretch of the flattened (rows, cols) view.
  for (i64 k = k0; k < k1;) {
    const i64 r = k / a.cols, c0 = k % a.cols, c1 = imin(a.cols, c0 + (k1 - k));
    k += c1 - c0;
    auto vec_ok = [&](const View& v) { return !v.data || v.s1 == 1 || v.s1 == 0; };
    const bool vectors = a.z.s1 == 1 && vec_ok(a.y) && vec_ok(a.weights) && vec_ok(a.pos_weight) &&
                         (!grad || a.grad.s1 == 1) && (!want_loss || a.loss.s1 == 1);
    i64 c = c0;
    if (vectors) {
      auto load = [&](const View& v, i64 col, T dflt) -> V {
        if (!v.data) return splat<V>(dflt);
        const T* p = static_cast<const T*>(v.data) + r * v.s0;
        return v.s1 == 0 ? splat<V>(p[0]) : loadu<V>(p + col);
      };
      for (; c + W <= c1; c += W) {
        Wd l, g;
        binary_lanes<Wd>(widen(load(a.z, c, T(0))), widen(load(a.y, c, T(0))), widen(load(a.weights, c, T(1))),
                         widen(load(a.pos_weight, c, T(1))), keep, half_e, l, g);
        total += l;
        if (want_loss) storeu(static_cast<T*>(a.loss.data) + r * a.loss.s0 + c, simd::to_lanes(l, T(0)));
        if (grad) storeu(static_cast<T*>(a.grad.data) + r * a.grad.s0 + c, simd::to_lanes(g * a.factor, T(0)));
      }
    }
    for (; c < c1; ++c) {
      double l, g;
      binary_lanes<double>(static_cast<double>(binary_at<T>(a.z, r, c, T(0))),
                           static_cast<double>(binary_at<T>(a.y, r, c, T(0))),
                           static_cast<double>(binary_at<T>(a.weights, r, c, T(1))),
                           static_cast<double>(binary_at<T>(a.pos_weight, r, c, T(1))), keep, half_e, l, g);
      total_tail += l;
      if (want_loss) static_cast<T*>(a.loss.data)[r * a.loss.s0 + c * a.loss.s1] = static_cast<T>(l);
      if (grad) static_cast<T*>(a.grad.data)[r * a.grad.s0 + c * a.grad.s1] = static_cast<T>(g * a.factor);
    }
  }
  a.task_sums[task] = hsum(total) + total_tail;
}

template <class T>
int binary(const BinaryArgs& a) {
  BinaryCtx<T> ctx{&a};
  parallel_for(a.threads, static_cast<std::size_t>(binary_tasks(a.rows, a.cols)), binary_task<T>, &ctx);
  return 0;
}

}  // namespace

extern const Table table = {
    softmax<float>,
    softmax<double>,
    sparse<float>,
    sparse<double>,
    sparse_denominator<float>,
    sparse_denominator<double>,
    categorical<float>,
    categorical<double>,
    categorical_denominator<float>,
    categorical_denominator<double>,
    binary<float>,
    binary<double>,
};

}  // namespace xent::engine::XENT_ISA_NS
