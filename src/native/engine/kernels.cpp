// The engine kernels, compiled once per instruction set (rules in common/isa.hpp).
//
// Each call is split into tasks of whole rows (kernels.hpp: n_tasks); a task takes its
// rows through the row kernel (rows.hpp: contiguous classes, one row at a time) or the
// lanes kernel (lanes.hpp: few classes or a strided class axis, W rows at a time), and
// rows holding NaN / +inf / only -inf through the reference's rules (reference.hpp).
// Both kernels end a row the same way (the *_outcome functions): the loss as a sum of
// non-negative parts, and the gradient as g_c = e_c coef - sub a_c with one entry (the
// label, or a confident row's max) formed without cancellation.
#include "engine/kernels.hpp"

#include "common/isa.hpp"
#include "common/parallel.hpp"
#include "common/simd.hpp"
#include "common/vecmath.hpp"
#include "engine/lanes.hpp"
#include "engine/reference.hpp"
#include "engine/rows.hpp"
#include "engine/util.hpp"

namespace xent::engine::XENT_ISA_NS {
namespace {

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

// A task's rows and its scratch (enough for either kernel), or null scratch on failure.
template <class T, class Args>
struct Task {
  i64 r0, r1;
  bool lanes;
  T* scratch;
  i64 cp, n_chunks;  // row kernel: padded row length and chunks per row

  Task(const Args& a, std::size_t task, int row_buffers, int tiles) {
    constexpr i64 W = Lanes<T>::width;
    const i64 C = a.classes, rows = a.outer * a.inner, per = rows_per_task(C);
    r0 = static_cast<i64>(task) * per;
    r1 = imin(rows, r0 + per);
    lanes = use_lanes(C, a.x, a.inner);
    cp = round_up(C, W) + W;
    n_chunks = (C + W * kChunkVecs - 1) / (W * kChunkVecs);
    const i64 n = lanes ? tiles * C * W + W : row_buffers * cp + n_chunks + 1;
    scratch = static_cast<T*>(thread_scratch(sizeof(T) * static_cast<std::size_t>(n)));
  }
};

// One row's result in both kernels: its loss l, and its gradient row as
// g_c = e_c coef - sub a_c (e_c = e^(x_c - max)), then g[fix] = fix_value (fix < 0: none).
struct Outcome {
  double loss, coef, sub;
  i64 fix;
  double fix_value;
};

// The per-row losses of a lanes block: rows that need the reference's rules get them
// (reference(l, want_grad) -> l; their gradient rows, skipped by the tile's scatter, are
// written there or zeroed), then the weighted losses s l are added in row order and stored.
template <class T, class Args, class Reference>
double block_losses(const Args& a, const Block<T>& b, const bool* ref, const double* sk, double* wl,
                    Reference reference) {
  const bool grad = a.grad.data != nullptr;
  double total = 0.0;
  for (int l = 0; l < b.n; ++l) {
    if (ref[l]) {  // rows with NaN / +inf / only -inf
      const bool want_g = grad && sk[l] * a.factor != 0.0;
      wl[l] = sk[l] == 0.0 ? 0.0 : sk[l] * reference(l, want_g);
      if (grad && !want_g) fill(at<T>(a.grad, b.o[l], b.i[l]), a.grad.s1, a.classes, T(0));
    }
    total += wl[l];
    if (a.loss.data) *at<T>(a.loss, b.o[l], b.i[l]) = static_cast<T>(wl[l]);
  }
  return total;
}

// ---------------------------------------------------------------- softmax family

template <class T>
void softmax_reference(const SoftmaxArgs& a, i64 o, i64 i) {
  const i64 C = a.classes, xs = a.x.s1, os = a.out.s1;
  const T* xr = at<T>(a.x, o, i);
  T* out = at<T>(a.out, o, i);
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
double softmax_rows(const Job<SoftmaxArgs>& job, const Task<T, SoftmaxArgs>& t) {
  const SoftmaxArgs& a = *job.a;
  using V = typename Lanes<T>::V;
  constexpr i64 W = Lanes<T>::width;
  const i64 C = a.classes, I = a.inner;
  const bool store = a.kind == kSoftmax;
  T *xbuf = t.scratch, *ebuf = t.scratch + t.cp, *obuf = t.scratch + 2 * t.cp, *chunk_m = t.scratch + 3 * t.cp;
  for (i64 r = t.r0; r < t.r1; ++r) {
    const i64 o = r / I, i = r % I;
    T* outr = at<T>(a.out, o, i);
    const T* x = contiguous(at<T>(a.x, o, i), a.x.s1, C, xbuf);
    RowStats<T> s = store ? row_stats<T, true, kNone>(x, C, nullptr, nullptr, T(0), T(0), ebuf, chunk_m)
                          : row_stats<T, false, kNone>(x, C, nullptr, nullptr, T(0), T(0), nullptr, nullptr);
    if (needs_reference(s)) {
      softmax_reference<T>(a, o, i);
      continue;
    }
    const double max = static_cast<double>(s.m);
    const double lse = vm::log1p_pos_f64((s.k - 1.0) + s.rest);
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
      scale_row<T, false>(out, ebuf, chunk_m, C, max, 1.0 / (s.k + s.rest), 0.0, nullptr, nullptr, T(0), T(0));
    }
    if (out != outr) scatter(outr, a.out.s1, out, C);
  }
  return 0.0;
}

template <class T>
double softmax_lanes(const Job<SoftmaxArgs>& job, const Task<T, SoftmaxArgs>& t) {
  const SoftmaxArgs& a = *job.a;
  using V = typename Lanes<T>::V;
  using I = typename Lanes<T>::I;
  constexpr int W = Lanes<T>::width;
  const i64 C = a.classes;
  T *xt = t.scratch, *et = t.scratch + C * W;
  Block<T> b;
  bool ref[W];
  for (i64 r = t.r0; r < t.r1; r += W) {
    b.set(r, t.r1, a.inner);
    gather_tile(a.x, b, C, xt);
    const LaneStats<T> s = a.kind == kSoftmax
                               ? lane_stats<T, true, kNone, false, false>(xt, nullptr, C, nullptr, T(0), T(0), I{}, et)
                               : lane_stats<T, false, kNone, false, false>(xt, nullptr, C, nullptr, T(0), T(0), I{},
                                                                          nullptr);
    const bool any_ref = mark_reference(s, b, ref);
    if (a.kind == kLogsumexp) {
      const V lse = simd::to_lanes(widen(s.m) + s.lse, T(0));
      for (int l = 0; l < b.n; ++l)
        if (!ref[l]) *at<T>(a.out, b.o[l], b.i[l]) = simd::lane(lse, l);
    } else if (a.kind == kLogSoftmax) {
      // (x - max) - lse: both parts rounded once, and |result| >= either of them.
      const V lv = simd::to_lanes(s.lse, T(0));
      for (i64 c = 0; c < C; ++c) storeu(xt + c * W, (loadu<V>(xt + c * W) - s.m) - lv);
      scatter_tile(a.out, b, C, xt, ref);
    } else {
      const V coef = simd::to_lanes(1.0 / (s.k + s.rest), T(0));
      lane_outputs<T, false>(et, et, nullptr, C, nullptr, T(0), T(0), coef, splat<V>(0), splat<I>(-1), splat<V>(0));
      scatter_tile(a.out, b, C, et, ref);
    }
    if (any_ref)
      for (int l = 0; l < b.n; ++l)
        if (ref[l]) softmax_reference<T>(a, b.o[l], b.i[l]);
  }
  return 0.0;
}

// A task: its rows through the lanes or the row kernel (each returns the task's loss sum).
template <class T, class Args, double (*LANES)(const Job<Args>&, const Task<T, Args>&),
          double (*ROWS)(const Job<Args>&, const Task<T, Args>&), int ROW_BUFFERS, int TILES>
void task_of(void* vctx, std::size_t task) {
  auto& job = *static_cast<Job<Args>*>(vctx);
  const Task<T, Args> t(*job.a, task, ROW_BUFFERS, TILES);
  if (!t.scratch) {
    job.status = 1;
    return;
  }
  const double total = t.lanes ? LANES(job, t) : ROWS(job, t);
  if (job.a->task_sums) job.a->task_sums[task] = total;
}

template <class T>
int softmax(const SoftmaxArgs& a) {
  return run_rows(a, task_of<T, SoftmaxArgs, softmax_lanes<T>, softmax_rows<T>, 4, 2>);
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

// With e = smoothing, W = sum_c w_c, A = a_y + (e / C) W (= sum_c w_c q_c), dy = x_y - max,
// ey = e^dy:  l = a_y (lse - dy) + (e / C)(W lse - D): two non-negative parts.
template <class T>
Outcome sparse_outcome(const SparseArgs& a, const Label& lb, const RowStats<T>& s, double lse, double dy, double ey,
                       double wsum) {
  const T* cw = static_cast<const T*>(a.class_weights);
  const double ec = a.smoothing / static_cast<double>(a.classes), scale = lb.sk * a.factor;
  const double s1 = (s.k - 1.0) + s.rest, sum = s.k + s.rest, big_a = lb.a_y + ec * wsum;
  Outcome out{0.0, scale * big_a / sum, scale * ec, -1, 0.0};
  if (lb.a_y != 0.0) out.loss += lb.a_y * (lse - dy);   // -(1 - e) w_y log p_y
  if (ec != 0.0) out.loss += ec * (wsum * lse - s.dot);  // -(e / C) sum_c w_c log p_c
  if (lb.valid && scale != 0.0) {
    const double wy = cw ? static_cast<double>(cw[lb.y]) : 1.0;
    out.fix = lb.y;
    if (dy == 0.0 && s.k == 1.0)  // p_y = 1 / sum: A p_y - a_y = (A - a_y - a_y s1) / sum, no cancellation
      out.fix_value = scale * ((ec * wsum - lb.a_y * s1) / sum - ec * wy);
    else
      out.fix_value = scale * (ey / sum * big_a - ec * wy - lb.a_y);
  }
  return out;
}

// The reference's rules (xent.losses._categorical_core.sparse_core) for one row.
template <class T>
double sparse_reference(const SparseArgs& a, double wsum, i64 o, i64 i, const Label& lb, bool grad) {
  const i64 C = a.classes, xs = a.x.s1;
  const T* xr = at<T>(a.x, o, i);
  const T* cw = static_cast<const T*>(a.class_weights);
  const double e = a.smoothing, ec = e / static_cast<double>(C), scale = lb.sk * a.factor;
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
  if (grad) {
    T* g = at<T>(a.grad, o, i);
    const double q = (scale * lb.a_y + scale * ec * wsum) / (1.0 + rr.rest);
    for (i64 c = 0; c < C; ++c) {
      double ac = scale * ec * (cw ? static_cast<double>(cw[c]) : 1.0);
      if (lb.valid && c == lb.y) ac += scale * lb.a_y;
      // Rows with scale 0 are 0 even where p is not finite (the reference's where(s != 0, g, 0)).
      g[c * a.grad.s1] = scale == 0.0 ? T(0) : static_cast<T>(ref_term(xr + c * xs, rr.m) * q - ac);
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

template <class T, bool STORE>
LaneStats<T> sparse_lane_stats(const T* xt, i64 C, const T* cw, double e, typename Lanes<T>::I yl, T* et) {
  if (e == 0.0) return lane_stats<T, STORE, kNone, true, false>(xt, nullptr, C, nullptr, T(0), T(0), yl, et);
  if (cw) return lane_stats<T, STORE, kClassW, true, false>(xt, nullptr, C, cw, T(0), T(0), yl, et);
  return lane_stats<T, STORE, kOnes, true, false>(xt, nullptr, C, nullptr, T(0), T(0), yl, et);
}

template <class T>
double sparse_rows(const Job<SparseArgs>& job, const Task<T, SparseArgs>& t) {
  const SparseArgs& a = *job.a;
  const double wsum = job.wsum;
  const i64 C = a.classes, I = a.inner;
  const T* cw = static_cast<const T*>(a.class_weights);
  T *xbuf = t.scratch, *ebuf = t.scratch + t.cp, *gbuf = t.scratch + 2 * t.cp, *chunk_m = t.scratch + 3 * t.cp;
  double total = 0.0;
  for (i64 r = t.r0; r < t.r1; ++r) {
    const i64 o = r / I, i = r % I;
    const Label lb = label_of<T>(a, o, i);
    T* gr = a.grad.data ? at<T>(a.grad, o, i) : nullptr;
    const bool want_g = gr && lb.sk * a.factor != 0.0;
    if (gr && !want_g) fill(gr, a.grad.s1, C, T(0));
    if (lb.sk == 0.0) {  // ignored or zero weight: loss 0 and gradient 0, whatever the logits
      if (a.loss.data) *at<T>(a.loss, o, i) = T(0);
      continue;
    }
    const T* x = contiguous(at<T>(a.x, o, i), a.x.s1, C, xbuf);
    RowStats<T> s = want_g ? sparse_stats<T, true>(x, C, cw, a.smoothing, ebuf, chunk_m)
                           : sparse_stats<T, false>(x, C, cw, a.smoothing, nullptr, nullptr);
    double l;
    if (needs_reference(s)) {
      l = sparse_reference<T>(a, wsum, o, i, lb, want_g);
    } else {
      const double max = static_cast<double>(s.m), lse = vm::log1p_pos_f64((s.k - 1.0) + s.rest);
      const double xy = lb.valid ? static_cast<double>(x[lb.y]) : max;
      const Outcome out = sparse_outcome(a, lb, s, lse, xy - max, want_g ? vm::expm_f64(xy, max) : 0.0, wsum);
      l = out.loss;
      if (want_g) {
        T* g = a.grad.s1 == 1 ? gr : gbuf;
        scale_row<T, false>(g, ebuf, chunk_m, C, max, out.coef, out.sub, nullptr, cw, T(0), T(0));
        if (out.fix >= 0) g[out.fix] = static_cast<T>(out.fix_value);
        if (g != gr) scatter(gr, a.grad.s1, g, C);
      }
    }
    const double wl = lb.sk * l;
    total += wl;
    if (a.loss.data) *at<T>(a.loss, o, i) = static_cast<T>(wl);
  }
  return total;
}

// sparse_outcome for W rows at once (wide lanes), the loss into wl and the gradient tile in et.
template <class T>
double sparse_lanes(const Job<SparseArgs>& job, const Task<T, SparseArgs>& t) {
  const SparseArgs& a = *job.a;
  const double wsum = job.wsum;
  using I = typename Lanes<T>::I;
  using Wd = typename Lanes<T>::Wide;
  constexpr int W = Lanes<T>::width;
  const i64 C = a.classes;
  const T* cw = static_cast<const T*>(a.class_weights);
  const bool grad = a.grad.data != nullptr;
  const double ec = a.smoothing / static_cast<double>(C);
  T *xt = t.scratch, *et = t.scratch + C * W;
  Block<T> b;
  Label lb[W];
  bool ref[W];
  double ay_a[W], sk_a[W], wy_a[W], valid_a[W], wl_a[W];
  double total = 0.0;
  for (i64 r = t.r0; r < t.r1; r += W) {
    b.set(r, t.r1, a.inner);
    I yl = splat<I>(-1);
    for (int l = 0; l < W; ++l) {
      lb[l] = label_of<T>(a, b.o[l], b.i[l]);
      simd::set_lane(yl, l, lb[l].valid ? lb[l].y : -1);
      ay_a[l] = lb[l].a_y;
      sk_a[l] = l < b.n ? lb[l].sk : 0.0;
      wy_a[l] = (lb[l].valid && cw) ? static_cast<double>(cw[lb[l].y]) : 1.0;
      valid_a[l] = lb[l].valid ? 1.0 : 0.0;
    }
    gather_tile(a.x, b, C, xt);
    const LaneStats<T> s = grad ? sparse_lane_stats<T, true>(xt, C, cw, a.smoothing, yl, et)
                                : sparse_lane_stats<T, false>(xt, C, cw, a.smoothing, yl, nullptr);
    mark_reference(s, b, ref);
    // sparse_outcome on native double registers, half a block at a time (see simd.hpp: Wide).
    using D = typename Lanes<double>::V;
    constexpr int Hd = Lanes<double>::width;
    Wd coef{}, sub{}, gy{};
    for (int h = 0; h < Lanes<T>::halves; ++h) {
      const D ay = loadu<D>(ay_a + h * Hd), sk = loadu<D>(sk_a + h * Hd), zero = splat<D>(0.0);
      const D max = simd::half(widen(s.m), h), xy = simd::half(widen(s.xy), h), lse = simd::half(s.lse, h);
      const D k = simd::half(s.k, h), rest = simd::half(s.rest, h);
      const D dy = select(loadu<D>(valid_a + h * Hd) != 0.0, xy - max, zero);
      D loss = select(ay != 0.0, ay * (lse - dy), zero);                   // -(1 - e) w_y log p_y
      if (ec != 0.0) loss += ec * (wsum * lse - simd::half(s.dot, h));    // -(e / C) sum_c w_c log p_c
      storeu(wl_a + h * Hd, select(sk != 0.0, sk * loss, zero));
      if (!grad) continue;
      const D scale = sk * a.factor, big_a = ay + ec * wsum, wy = loadu<D>(wy_a + h * Hd);
      const D s1 = (k - 1.0) + rest, sum = k + rest;
      // The label's entry: A p_y - a_y, from s1 when y is the row's unique max (no cancellation).
      simd::set_half(gy, h, select((dy == 0.0) & (k == 1.0), scale * ((ec * wsum - ay * s1) / sum - ec * wy),
                                   scale * (vm::expm_f64x<0>(xy, max) / sum * big_a - ec * wy - ay)));
      simd::set_half(coef, h, scale * big_a / sum);
      simd::set_half(sub, h, scale * ec);
    }
    if (grad) {
      lane_outputs<T, false>(et, et, nullptr, C, cw, T(0), T(0), simd::to_lanes(coef, T(0)),
                             simd::to_lanes(sub, T(0)), yl, simd::to_lanes(gy, T(0)));
      scatter_tile(a.grad, b, C, et, ref);
    }
    total += block_losses(a, b, ref, sk_a, wl_a, [&](int l, bool want_g) {
      return sparse_reference<T>(a, wsum, b.o[l], b.i[l], lb[l], want_g);
    });
  }
  return total;
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
  return run_rows(a, task_of<T, SparseArgs, sparse_lanes<T>, sparse_rows<T>, 4, 2>,
                  class_weight_sum<T>(a.class_weights, a.classes));
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

// l = A lse - D (both parts >= 0). The gradient entry at a row's unique max j, where
// p_j = 1 / sum, is A p_j - a_j = ((A - a_j) - a_j s1) / sum: no cancellation.
template <class T>
Outcome categorical_outcome(const RowStats<T>& s, double lse, i64 argmax, double a_max, double scale) {
  const double s1 = (s.k - 1.0) + s.rest, sum = s.k + s.rest;
  Outcome out{s.a * lse - s.dot, scale * s.a / sum, scale, -1, 0.0};
  if (argmax >= 0 && s.k == 1.0 && scale != 0.0) {
    out.fix = argmax;
    out.fix_value = scale * (((s.a - a_max) - a_max * s1) / sum);
  }
  return out;
}

template <class T>
inline double target_weight(const CategoricalArgs& a, double t, i64 c) {
  const T* cw = static_cast<const T*>(a.class_weights);
  const double w = (1.0 - a.smoothing) * t + a.smoothing / static_cast<double>(a.classes);
  return cw ? w * static_cast<double>(cw[c]) : w;
}

// The reference's rules (xent.losses._categorical_core.categorical_core) for one row.
template <class T>
double categorical_reference(const CategoricalArgs& a, i64 o, i64 i, double scale, bool grad) {
  const i64 C = a.classes, xs = a.x.s1, ts = a.targets.s1;
  const T* xr = at<T>(a.x, o, i);
  const T* tr = at<T>(a.targets, o, i);
  RefRow<T> rr = reference_row(xr, xs, C);
  double per = 0.0, big_a = 0.0;
  for (i64 c = 0; c < C; ++c) {
    const double ac = target_weight<T>(a, static_cast<double>(tr[c * ts]), c);
    big_a += ac;
    const double logp = (static_cast<double>(xr[c * xs]) - rr.m) - rr.lse;
    per -= ac == 0.0 ? 0.0 : ac * logp;
  }
  if (grad) {
    T* g = at<T>(a.grad, o, i);
    const double q = big_a / (1.0 + rr.rest);
    for (i64 c = 0; c < C; ++c) {
      const double ac = target_weight<T>(a, static_cast<double>(tr[c * ts]), c);
      g[c * a.grad.s1] = scale == 0.0 ? T(0) : static_cast<T>(scale * (ref_term(xr + c * xs, rr.m) * q - ac));
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
double categorical_rows(const Job<CategoricalArgs>& job, const Task<T, CategoricalArgs>& t) {
  const CategoricalArgs& a = *job.a;
  constexpr i64 L = Lanes<T>::width * kChunkVecs;
  const i64 C = a.classes, I = a.inner;
  const T* cw = static_cast<const T*>(a.class_weights);
  const double e = a.smoothing, ec = e / static_cast<double>(C);
  const T keep_t = static_cast<T>(1.0 - e), ect = static_cast<T>(ec);
  T *xbuf = t.scratch, *tbuf = t.scratch + t.cp, *ebuf = t.scratch + 2 * t.cp, *gbuf = t.scratch + 3 * t.cp;
  T* chunk_m = t.scratch + 4 * t.cp;
  double total = 0.0;
  for (i64 r = t.r0; r < t.r1; ++r) {
    const i64 o = r / I, i = r % I;
    const double sk = a.weights.data ? *at<double>(a.weights, o, i) : 1.0;
    T* gr = a.grad.data ? at<T>(a.grad, o, i) : nullptr;
    const double scale = sk * a.factor;
    const bool want_g = gr && scale != 0.0;
    if (gr && !want_g) fill(gr, a.grad.s1, C, T(0));
    if (sk == 0.0) {
      if (a.loss.data) *at<T>(a.loss, o, i) = T(0);
      continue;
    }
    const T* x = contiguous(at<T>(a.x, o, i), a.x.s1, C, xbuf);
    const T* tr = contiguous(at<T>(a.targets, o, i), a.targets.s1, C, tbuf);
    RowStats<T> s = want_g ? categorical_stats<T, true>(x, C, tr, cw, keep_t, ect, ebuf, chunk_m)
                           : categorical_stats<T, false>(x, C, tr, cw, keep_t, ect, nullptr, nullptr);
    double l;
    if (needs_reference(s)) {
      l = categorical_reference<T>(a, o, i, scale, want_g);
    } else {
      const double max = static_cast<double>(s.m), lse = vm::log1p_pos_f64((s.k - 1.0) + s.rest);
      i64 j = -1;
      if (want_g && s.k == 1.0) {  // the row's unique max: in the chunk where the max was reached
        for (i64 c = s.max_chunk * L, end = imin(C, c + L); c < end && j < 0; ++c)
          if (x[c] == s.m) j = c;
      }
      const Outcome out = categorical_outcome(s, lse, j, j >= 0 ? target_weight<T>(a, tr[j], j) : 0.0, scale);
      l = out.loss;
      if (want_g) {
        T* g = a.grad.s1 == 1 ? gr : gbuf;
        scale_row<T, true>(g, ebuf, chunk_m, C, max, out.coef, out.sub, tr, cw, keep_t, ect);
        if (out.fix >= 0) g[out.fix] = static_cast<T>(out.fix_value);
        if (g != gr) scatter(gr, a.grad.s1, g, C);
      }
    }
    const double wl = sk * l;
    total += wl;
    if (a.loss.data) *at<T>(a.loss, o, i) = static_cast<T>(wl);
  }
  return total;
}

template <class T>
double categorical_lanes(const Job<CategoricalArgs>& job, const Task<T, CategoricalArgs>& t) {
  const CategoricalArgs& a = *job.a;
  using I = typename Lanes<T>::I;
  using Wd = typename Lanes<T>::Wide;
  constexpr int W = Lanes<T>::width;
  const i64 C = a.classes;
  const T* cw = static_cast<const T*>(a.class_weights);
  const bool grad = a.grad.data != nullptr;
  const double e = a.smoothing, ec = e / static_cast<double>(C);
  const T keep_t = static_cast<T>(1.0 - e), ect = static_cast<T>(ec);
  T *xt = t.scratch, *tt = t.scratch + C * W, *et = t.scratch + 2 * C * W;
  Block<T> b;
  bool ref[W];
  double sk_a[W], a_max[W], wl_a[W];
  double total = 0.0;
  for (i64 r = t.r0; r < t.r1; r += W) {
    b.set(r, t.r1, a.inner);
    for (int l = 0; l < W; ++l) sk_a[l] = l < b.n ? (a.weights.data ? *at<double>(a.weights, b.o[l], b.i[l]) : 1.0) : 0.0;
    gather_tile(a.x, b, C, xt);
    gather_tile(a.targets, b, C, tt);
    LaneStats<T> s;
    if (cw) s = grad ? lane_stats<T, true, kTargetsW, false, true>(xt, tt, C, cw, keep_t, ect, I{}, et)
                     : lane_stats<T, false, kTargetsW, false, false>(xt, tt, C, cw, keep_t, ect, I{}, nullptr);
    else s = grad ? lane_stats<T, true, kTargets, false, true>(xt, tt, C, nullptr, keep_t, ect, I{}, et)
                  : lane_stats<T, false, kTargets, false, false>(xt, tt, C, nullptr, keep_t, ect, I{}, nullptr);
    mark_reference(s, b, ref);
    using D = typename Lanes<double>::V;
    constexpr int Hd = Lanes<double>::width;
    I fix = splat<I>(-1);
    if (grad) {
      for (int l = 0; l < W; ++l) {
        const i64 j = simd::lane(s.k, l) == 1.0 ? simd::lane_i(s.argmax, l) : -1;
        simd::set_lane(fix, l, j);
        a_max[l] = j >= 0 ? target_weight<T>(a, static_cast<double>(tt[j * W + l]), j) : 0.0;
      }
    }
    Wd coef{}, sub{}, fix_value{};
    for (int h = 0; h < Lanes<T>::halves; ++h) {
      const D sk = loadu<D>(sk_a + h * Hd), zero = splat<D>(0.0), big_a = simd::half(s.a, h);
      // sum_c a_c (lse - (x_c - max)): both parts >= 0
      storeu(wl_a + h * Hd, select(sk != 0.0, sk * (big_a * simd::half(s.lse, h) - simd::half(s.dot, h)), zero));
      if (!grad) continue;
      const D scale = sk * a.factor, am = loadu<D>(a_max + h * Hd);
      const D k = simd::half(s.k, h), rest = simd::half(s.rest, h), s1 = (k - 1.0) + rest, sum = k + rest;
      simd::set_half(coef, h, scale * big_a / sum);
      simd::set_half(sub, h, scale);
      // The entry at a row's unique max j: A p_j - a_j = ((A - a_j) - a_j s1) / sum (no cancellation).
      simd::set_half(fix_value, h, scale * (((big_a - am) - am * s1) / sum));
    }
    if (grad) {
      lane_outputs<T, true>(et, et, tt, C, cw, keep_t, ect, simd::to_lanes(coef, T(0)), simd::to_lanes(sub, T(0)),
                            fix, simd::to_lanes(fix_value, T(0)));
      scatter_tile(a.grad, b, C, et, ref);
    }
    total += block_losses(a, b, ref, sk_a, wl_a, [&](int l, bool want_g) {
      return categorical_reference<T>(a, b.o[l], b.i[l], sk_a[l] * a.factor, want_g);
    });
  }
  return total;
}

template <class T>
int categorical(const CategoricalArgs& a) {
  return run_rows(a, task_of<T, CategoricalArgs, categorical_lanes<T>, categorical_rows<T>, 5, 3>);
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
      using D = typename Lanes<double>::V;
      for (; c + W <= c1; c += W) {
        const Wd z = widen(load(a.z, c, T(0))), y = widen(load(a.y, c, T(0)));
        const Wd sw = widen(load(a.weights, c, T(1))), pw = widen(load(a.pos_weight, c, T(1)));
        Wd l{}, g{};
        for (int h = 0; h < Lanes<T>::halves; ++h) {  // native double registers (see simd.hpp: Wide)
          D lh, gh;
          binary_lanes<D>(simd::half(z, h), simd::half(y, h), simd::half(sw, h), simd::half(pw, h), keep, half_e, lh,
                          gh);
          simd::set_half(l, h, lh);
          simd::set_half(g, h, gh);
        }
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
