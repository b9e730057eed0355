// The metrics kernels, compiled once per instruction set (rules in common/isa.hpp;
// what they compute and how they sum in kernels.hpp).
//
// The formulas are those of xent/metrics/_kernels_numpy.py (the reference and the
// tests' oracle), written out per element:
//   binary probabilities  loss = -log(clip(y ? p : 1 - p)), clip to [eps, 1 - eps]
//   binary logits         loss = log1p(exp(-|x|)) - min(+-x, 0)   (= -log_sigmoid(+-x), never overflows)
//   multi-class probs     loss = -log(clip(p_y))
//   multi-class logits    loss = log(sum_k exp(x_k - m)) - (x_y - m), m = max_k x_k (max-shifted log-softmax)
// Every loop that reduces carries `omp simd reduction` (-fopenmp-simd, no OpenMP
// runtime): the vectoriser may reassociate those sums, and only those.
#include <cstdlib>
#include <cstring>

#include "common/isa.hpp"
#include "common/parallel.hpp"
#include "common/vecmath.hpp"
#include "metrics/kernels.hpp"

namespace xent::metrics::XENT_ISA_NS {
namespace {

constexpr std::size_t kBinaryGrain = 1 << 16;  // rows per task (binary); fixed, so results do not depend on threads
constexpr std::size_t kSub = 2048;             // binary rows per block: summed plainly, then one compensated add
constexpr std::size_t kMaxRows = 256;          // multi-class rows per block (fewer when K is large)
constexpr std::size_t kFlushRows = 2048;       // multi-class: rows between compensated adds
constexpr double kInf = __builtin_inf();

// Scalar slots of a task's sums, in the order of the Sums fields.
enum Slot { kWeight = 0, kLabels, kPredictions, kLoss, kBrier, kCorrect, kSlots };

// Neumaier's compensated add: (s, c) += v, the rounding error of s + v kept in c.
inline void add(double& s, double& c, double v) {
  double t = s + v;
  c += (__builtin_fabs(s) >= __builtin_fabs(v)) ? (s - t) + v : (v - t) + s;
  s = t;
}

// (s, c) += (s2, c2) with an error-free TwoSum, as xent.metrics._sums.merge_into.
inline void merge(double& s, double& c, double s2, double c2) {
  double t = s + s2;
  double bp = t - s;
  double err = (s - (t - bp)) + (s2 - bp);
  c += c2 + err;
  s = t;
}

inline void merge_field(const Comp& dst, const double* s2, const double* c2, std::size_t n) {
  if (!dst.s) return;
  for (std::size_t i = 0; i < n; ++i) merge(dst.s[i], dst.c[i], s2[i], c2[i]);
}

inline bool weight_bad(double w) { return !((w >= 0.0) & (w < kInf)); }

// One task's sums: pointers into a block of scratch memory (layout in part_bytes / carve).
struct Part {
  double* s;  // kSlots scalar sums
  double* c;  // and their compensations
  double* bs;  // 3 * nb: bin weight | bin prediction | bin outcome
  double* bc;
  double* cs;  // 3 * K: class weight | class loss | class prediction
  double* cc;
  double* lb;  // 3 * nb plain per-block bin sums
  double* lc;  // 3 * K plain per-block class sums
  std::int64_t* bn;  // nb rows per bin
  std::int64_t* cn;  // K rows per class
  std::int64_t* lh;  // 2 * nb rows per (bin, label): unweighted binary blocks
  std::int64_t first_bad;
};

std::size_t part_doubles(std::size_t nb, std::size_t k) { return 2 * kSlots + 9 * nb + 9 * k; }
std::size_t part_ints(std::size_t nb, std::size_t k) { return 3 * nb + k; }
std::size_t part_bytes(std::size_t nb, std::size_t k) {
  return (part_doubles(nb, k) + part_ints(nb, k)) * 8 + 64;  // + room to keep the next part 64-byte aligned
}

Part carve(char* base, std::size_t nb, std::size_t k) {
  std::memset(base, 0, part_bytes(nb, k));
  double* d = reinterpret_cast<double*>(base);
  Part p;
  p.s = d;
  p.c = d + kSlots;
  d += 2 * kSlots;
  p.bs = d;
  p.bc = d + 3 * nb;
  p.lb = d + 6 * nb;
  d += 9 * nb;
  p.cs = d;
  p.cc = d + 3 * k;
  p.lc = d + 6 * k;
  d += 9 * k;
  std::int64_t* i = reinterpret_cast<std::int64_t*>(d);
  p.bn = i;
  p.lh = i + nb;
  p.cn = i + 3 * nb;
  p.first_bad = -1;
  return p;
}

// Plain per-block sums -> the task's compensated sums, then cleared.
void flush(double* local, double* s, double* c, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    add(s[i], c[i], local[i]);
    local[i] = 0.0;
  }
}

// Work shared by every task of one call.
struct Job {
  const Batch* batch;
  const Options* options;
  std::size_t nb;
  std::size_t k;  // classes (0: binary)
  std::size_t grain;
  std::size_t stride;  // bytes between parts in `scratch`
  char* scratch;
  void (*rows)(const Job& job, Part& part, std::size_t begin, std::size_t end);
};

void run_task(void* ctx, std::size_t t) {
  const Job& job = *static_cast<const Job*>(ctx);
  Part* part = reinterpret_cast<Part*>(job.scratch + t * job.stride);  // the Part header sits first
  char* body = job.scratch + t * job.stride + ((sizeof(Part) + 63) / 64) * 64;
  *part = carve(body, job.nb, job.k);
  std::size_t begin = t * job.grain;
  std::size_t end = begin + job.grain < job.batch->n ? begin + job.grain : job.batch->n;
  job.rows(job, *part, begin, end);
}

// Runs `rows` over every task, then folds the tasks' sums into `sums` in task order,
// or returns the first invalid row (sums untouched).
std::int64_t run(const Batch& batch, const Options& options, const Sums& sums, std::size_t grain,
                 void (*rows)(const Job&, Part&, std::size_t, std::size_t)) {
  if (batch.n == 0) return -1;
  std::size_t nb = static_cast<std::size_t>(sums.n_bins);
  std::size_t k = static_cast<std::size_t>(sums.n_classes);
  std::size_t n_tasks = n_tasks_for(batch.n, grain);
  std::size_t stride = ((sizeof(Part) + 63) / 64) * 64 + ((part_bytes(nb, k) + 63) / 64) * 64;
  void* raw = std::malloc(n_tasks * stride + 64);
  if (!raw) return kOutOfMemory;
  char* scratch = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(raw) + 63) & ~std::uintptr_t(63));
  Job job{&batch, &options, nb, k, grain, stride, scratch, rows};
  parallel_for(options.threads, n_tasks, run_task, &job);
  std::int64_t first_bad = -1;
  for (std::size_t t = 0; t < n_tasks && first_bad < 0; ++t)
    first_bad = reinterpret_cast<Part*>(scratch + t * stride)->first_bad;
  if (first_bad < 0) {
    const Comp* scalars[kSlots] = {&sums.weight, &sums.weighted_labels, &sums.weighted_predictions,
                                   &sums.loss,   &sums.brier,           &sums.correct};
    for (std::size_t t = 0; t < n_tasks; ++t) {
      const Part& p = *reinterpret_cast<Part*>(scratch + t * stride);
      for (int f = 0; f < kSlots; ++f) merge_field(*scalars[f], p.s + f, p.c + f, 1);
      merge_field(sums.bin_weight, p.bs, p.bc, nb);
      merge_field(sums.bin_prediction, p.bs + nb, p.bc + nb, nb);
      merge_field(sums.bin_outcome, p.bs + 2 * nb, p.bc + 2 * nb, nb);
      for (std::size_t b = 0; b < nb; ++b) sums.bin_rows[b] += p.bn[b];
      if (k) {
        merge_field(sums.class_weight, p.cs, p.cc, k);
        merge_field(sums.class_loss, p.cs + k, p.cc + k, k);
        merge_field(sums.class_prediction, p.cs + 2 * k, p.cc + 2 * k, k);
        for (std::size_t c = 0; c < k; ++c) sums.class_rows[c] += p.cn[c];
      }
    }
    *sums.rows += static_cast<std::int64_t>(batch.n);
  }
  std::free(raw);
  return first_bad;
}

// ---- binary -----------------------------------------------------------------------

// The bin of a probability: floor(p * nb), p = 1 in the last bin; NaN -> 0 (such rows are invalid anyway).
inline int bin_of(double p, double fnb, double top) {
  double xb = p * fnb;
  xb = xb >= 0.0 ? xb : 0.0;
  xb = xb < top ? xb : top;
  return static_cast<int>(xb);
}

template <class Y, class P, bool W, bool LOGITS>
inline bool binary_row_bad(const Y* y, const P* p, const double* w, std::size_t j) {
  double x = static_cast<double>(p[j]);
  bool bad = (y[j] != 0) & (y[j] != 1);
  bad |= LOGITS ? !(__builtin_fabs(x) < kInf) : !((x >= 0.0) & (x <= 1.0));
  if (W) bad |= weight_bad(w[j]);
  return bad;
}

template <class Y, class P, bool W, bool LOGITS>
void binary_rows(const Job& job, Part& part, std::size_t begin, std::size_t end) {
  const Batch& batch = *job.batch;
  const Y* __restrict y = static_cast<const Y*>(batch.labels);
  const P* __restrict p = static_cast<const P*>(batch.pred[0]);
  const double* __restrict w = batch.weights;
  const std::size_t nb = job.nb;
  const double fnb = static_cast<double>(nb), top = fnb - 1.0;
  const double lo = job.options->eps, hi = 1.0 - job.options->eps;
  double* __restrict lb = part.lb;
  std::int64_t* __restrict lh = part.lh;
  std::int64_t* __restrict bn = part.bn;
  // per row, for the scatter into the bins: w p (or p), w y, the bin; computed branch-free in the
  // vector loop, so that the scalar scatter loop has no data-dependent branch to mispredict
  double wp[kSub], wy[kSub];
  int idx[kSub], lab[kSub];
  for (std::size_t i = begin; i < end; i += kSub) {
    const std::size_t m = end - i < kSub ? end - i : kSub;
    const Y* __restrict yb = y + i;
    const P* __restrict pb = p + i;
    const double* __restrict wb = W ? w + i : nullptr;
    double a3 = 0, a4 = 0, a5 = 0;
    int bad = 0;
    // labels first, in a loop of their own: an int8 label in the main loop would make it
    // 64 rows wide and spill its float64 accumulators
#pragma omp simd reduction(| : bad)
    for (std::size_t j = 0; j < m; ++j) {
      bad |= (yb[j] != 0) & (yb[j] != 1);
      lab[j] = yb[j] == 1;
    }
    // the sums of w, w y and w p are the sums of the bins below: not summed here (fewer live vectors)
#pragma omp simd reduction(+ : a3, a4, a5) reduction(| : bad)
    for (std::size_t j = 0; j < m; ++j) {
      const bool pos = lab[j] != 0;
      const double yy = pos ? 1.0 : 0.0;
      const double x = static_cast<double>(pb[j]);
      const double wj = W ? wb[j] : 1.0;
      bad |= LOGITS ? !(__builtin_fabs(x) < kInf) : !((x >= 0.0) & (x <= 1.0));
      if (W) bad |= weight_bad(wj);
      double loss, pj;
      if (LOGITS) {
        // -log sigmoid(+-x) = log1p(exp(-|x|)) - min(+-x, 0): exp never overflows
        const double xf = __builtin_fabs(x) < kInf ? x : 0.0;  // NaN/inf rows are invalid: keep exp's input finite
        const double e = vm::exp_f64(-__builtin_fabs(xf));
        const double sx = pos ? xf : -xf;
        loss = vm::log1p_f64(e) - (sx < 0.0 ? sx : 0.0);
        pj = (xf >= 0.0 ? 1.0 : e) / (1.0 + e);
      } else {
        const double pc = x < lo ? lo : (x > hi ? hi : x);  // clip like scikit-learn's log_loss
        loss = -vm::log_f64(pos ? pc : 1.0 - pc);
        pj = x;
      }
      const double d = pj - yy;
      const double hit = ((pj >= 0.5) == pos) ? 1.0 : 0.0;
      a3 += wj * loss;
      a4 += wj * d * d;
      a5 += wj * hit;
      wp[j] = wj * pj;
      if (W) wy[j] = wj * yy;
      idx[j] = bin_of(pj, fnb, top);
    }
    if (bad) {  // the first invalid row (the block's start if the scalar check disagreed)
      std::size_t j = 0;
      while (j < m && !binary_row_bad<Y, P, W, LOGITS>(yb, pb, wb, j)) ++j;
      part.first_bad = static_cast<std::int64_t>(i + (j < m ? j : 0));
      return;
    }
    add(part.s[kLoss], part.c[kLoss], a3);
    add(part.s[kBrier], part.c[kBrier], a4);
    add(part.s[kCorrect], part.c[kCorrect], a5);
    if (W) {
      for (std::size_t j = 0; j < m; ++j) {
        const int b = idx[j];
        lb[b] += wb[j];
        lb[nb + b] += wp[j];
        lb[2 * nb + b] += wy[j];
        bn[b] += 1;
      }
    } else {  // counts are exact integers; only the sum of p per bin is a float sum
      for (std::size_t j = 0; j < m; ++j) {
        const int b = idx[j];
        lh[2 * b + lab[j]] += 1;
        lb[nb + b] += wp[j];
      }
      for (std::size_t b = 0; b < nb; ++b) {
        const std::int64_t rows = lh[2 * b] + lh[2 * b + 1];
        lb[b] = static_cast<double>(rows);
        lb[2 * nb + b] = static_cast<double>(lh[2 * b + 1]);
        bn[b] += rows;
        lh[2 * b] = lh[2 * b + 1] = 0;
      }
    }
    double a0 = 0, a1 = 0, a2 = 0;  // sum w, sum w y, sum w p: over the block's bins
    for (std::size_t b = 0; b < nb; ++b) {
      a0 += lb[b];
      a2 += lb[nb + b];
      a1 += lb[2 * nb + b];
    }
    add(part.s[kWeight], part.c[kWeight], a0);
    add(part.s[kLabels], part.c[kLabels], a1);
    add(part.s[kPredictions], part.c[kPredictions], a2);
    flush(lb, part.bs, part.bc, 3 * nb);
  }
}

// ---- multi-class ------------------------------------------------------------------

// Rows per block: the block's K columns stay in the L1/L2 cache.
inline std::size_t multi_block(std::size_t k) {
  std::size_t m = 16384 / (k ? k : 1);
  m = m < 8 ? 8 : (m > kMaxRows ? kMaxRows : m);
  return m & ~std::size_t(7);
}

template <class P, bool CONTIG>
inline double at(const P* col, std::size_t j, std::size_t stride) {
  return static_cast<double>(col[CONTIG ? j : j * stride]);
}

template <class P, bool LOGITS, bool CONTIG>
bool multi_row_bad(const Job& job, std::size_t row) {
  const Batch& b = *job.batch;
  const std::int64_t yv = b.label_type == Labels::i8 ? static_cast<const std::int8_t*>(b.labels)[row]
                                                       : static_cast<const std::int64_t*>(b.labels)[row];
  if (yv < 0 || yv >= static_cast<std::int64_t>(job.k)) return true;
  if (b.weights && weight_bad(b.weights[row])) return true;
  double t = 0.0;
  for (std::size_t c = 0; c < job.k; ++c) {
    const double x = at<P, CONTIG>(static_cast<const P*>(b.pred[c]), row, static_cast<std::size_t>(b.stride));
    if (LOGITS ? !(__builtin_fabs(x) < kInf) : !((x >= 0.0) & (x <= 1.0))) return true;
    t += x;
  }
  return !LOGITS && !(__builtin_fabs(t - 1.0) <= job.options->tolerance);
}

// A block holds an invalid row: record the first one (the task stops there; the block's
// start if the scalar check disagreed, so that nothing is ever dropped silently).
template <class P, bool LOGITS, bool CONTIG>
void locate_bad(const Job& job, Part& part, std::size_t i, std::size_t m) {
  std::size_t j = 0;
  while (j < m && !multi_row_bad<P, LOGITS, CONTIG>(job, i + j)) ++j;
  part.first_bad = static_cast<std::int64_t>(i + (j < m ? j : 0));
}

template <class P, bool LOGITS, bool CONTIG>
void multi_rows(const Job& job, Part& part, std::size_t begin, std::size_t end) {
  const Batch& batch = *job.batch;
  const std::size_t K = job.k, nb = job.nb;
  const std::size_t stride = static_cast<std::size_t>(batch.stride);
  const double fnb = static_cast<double>(nb), top = fnb - 1.0;
  const double lo = job.options->eps, hi = 1.0 - job.options->eps, tol = job.options->tolerance;
  const P* const* cols = reinterpret_cast<const P* const*>(batch.pred);
  const std::size_t B = multi_block(K);
  double* __restrict lc = part.lc;  // class weight | class loss | class prediction
  double* __restrict lb = part.lb;  // bin weight | bin confidence | bin correct
  int yl[kMaxRows], arg[kMaxRows];
  double wl[kMaxRows], tsum[kMaxRows], conf[kMaxRows], py[kMaxRows], br[kMaxRows], mx[kMaxRows], loss[kMaxRows];
  std::size_t since_flush = 0;
  for (std::size_t i = begin; i < end; i += B) {
    const std::size_t m = end - i < B ? end - i : B;
    int bad = 0;
    // labels and weights into block-local arrays (one code path for int8/int64 labels, with or without weights)
    if (batch.label_type == Labels::i8) {
      const std::int8_t* y = static_cast<const std::int8_t*>(batch.labels) + i;
      for (std::size_t j = 0; j < m; ++j) {
        bad |= (y[j] < 0) | (static_cast<std::size_t>(y[j]) >= K);
        yl[j] = y[j];
      }
    } else {
      const std::int64_t* y = static_cast<const std::int64_t*>(batch.labels) + i;
      for (std::size_t j = 0; j < m; ++j) {
        bad |= (y[j] < 0) | (y[j] >= static_cast<std::int64_t>(K));
        yl[j] = static_cast<int>(y[j]);
      }
    }
    if (batch.weights) {
      for (std::size_t j = 0; j < m; ++j) {
        wl[j] = batch.weights[i + j];
        bad |= weight_bad(wl[j]);
      }
    } else {
      for (std::size_t j = 0; j < m; ++j) wl[j] = 1.0;
    }
    if (bad) {  // a bad label would index out of range below: locate it now
      return locate_bad<P, LOGITS, CONTIG>(job, part, i, m);
    }
    for (std::size_t j = 0; j < m; ++j) {
      tsum[j] = 0.0;
      conf[j] = -1.0;
      arg[j] = 0;
      py[j] = 0.0;
      br[j] = 0.0;
      mx[j] = -kInf;
    }
    if (LOGITS) {
      // pass 1: finiteness, the row max and the label's logit
      for (std::size_t c = 0; c < K; ++c) {
        const P* __restrict col = cols[c] + (CONTIG ? i : i * stride);
        const int ci = static_cast<int>(c);
#pragma omp simd reduction(| : bad)
        for (std::size_t j = 0; j < m; ++j) {
          const double x = at<P, CONTIG>(col, j, stride);
          bad |= !(__builtin_fabs(x) < kInf);
          mx[j] = x > mx[j] ? x : mx[j];
          py[j] = yl[j] == ci ? x : py[j];
        }
      }
      if (bad) {  // before any exp: the passes below assume finite logits
        return locate_bad<P, LOGITS, CONTIG>(job, part, i, m);
      }
      // pass 2: sum_k exp(x_k - m), max-shifted so that exp never overflows
      for (std::size_t c = 0; c < K; ++c) {
        const P* __restrict col = cols[c] + (CONTIG ? i : i * stride);
#pragma omp simd
        for (std::size_t j = 0; j < m; ++j) tsum[j] += vm::exp_f64(at<P, CONTIG>(col, j, stride) - mx[j]);
      }
      for (std::size_t j = 0; j < m; ++j) loss[j] = 1.0 / tsum[j];  // (1 / t for now)
      // pass 3: q_k = exp(x_k - m) / t: Brier, arg max, sum of w q_k per class
      for (std::size_t c = 0; c < K; ++c) {
        const P* __restrict col = cols[c] + (CONTIG ? i : i * stride);
        const int ci = static_cast<int>(c);
        double ak = 0.0;
#pragma omp simd reduction(+ : ak)
        for (std::size_t j = 0; j < m; ++j) {
          const double q = vm::exp_f64(at<P, CONTIG>(col, j, stride) - mx[j]) * loss[j];
          const double d = q - (yl[j] == ci ? 1.0 : 0.0);
          br[j] += d * d;
          const bool gt = q > conf[j];  // strict: the first maximum wins, like np.argmax
          conf[j] = gt ? q : conf[j];
          arg[j] = gt ? ci : arg[j];
          ak += wl[j] * q;
        }
        lc[2 * K + c] += ak;
      }
#pragma omp simd
      for (std::size_t j = 0; j < m; ++j) loss[j] = vm::log_f64(tsum[j]) - (py[j] - mx[j]);  // (x_y - m) exact: tiny losses keep their digits
    } else {
      for (std::size_t c = 0; c < K; ++c) {
        const P* __restrict col = cols[c] + (CONTIG ? i : i * stride);
        const int ci = static_cast<int>(c);
        double ak = 0.0;
#pragma omp simd reduction(+ : ak) reduction(| : bad)
        for (std::size_t j = 0; j < m; ++j) {
          const double x = at<P, CONTIG>(col, j, stride);
          bad |= !((x >= 0.0) & (x <= 1.0));
          tsum[j] += x;
          const bool isy = yl[j] == ci;
          py[j] = isy ? x : py[j];
          const double d = x - (isy ? 1.0 : 0.0);
          br[j] += d * d;
          const double cj = conf[j];
          const bool gt = x > cj;  // strict: the first maximum wins, like np.argmax
          conf[j] = gt ? x : cj;
          arg[j] = gt ? ci : arg[j];
          ak += wl[j] * x;
        }
        lc[2 * K + c] += ak;
      }
#pragma omp simd reduction(| : bad)
      for (std::size_t j = 0; j < m; ++j) {
        bad |= !(__builtin_fabs(tsum[j] - 1.0) <= tol);
        const double pc = py[j] < lo ? lo : (py[j] > hi ? hi : py[j]);  // clip like scikit-learn's log_loss
        loss[j] = -vm::log_f64(pc);
      }
    }
    if (bad) {
      return locate_bad<P, LOGITS, CONTIG>(job, part, i, m);
    }
    // the block's sums; per row, the weighted values the scatter below adds (branch-free here,
    // so that the scalar scatter loop has no data-dependent branch to mispredict)
    double a0 = 0, a3 = 0, a4 = 0, a5 = 0;
#pragma omp simd reduction(+ : a0, a3, a4, a5)
    for (std::size_t j = 0; j < m; ++j) {
      const double wj = wl[j];
      const double hit = arg[j] == yl[j] ? wj : 0.0;
      a0 += wj;
      a3 += wj * loss[j];
      a4 += wj * br[j];
      a5 += hit;
      loss[j] *= wj;
      br[j] = hit;
      py[j] = wj * conf[j];
      arg[j] = bin_of(conf[j], fnb, top);
    }
    add(part.s[kWeight], part.c[kWeight], a0);
    add(part.s[kLoss], part.c[kLoss], a3);
    add(part.s[kBrier], part.c[kBrier], a4);
    add(part.s[kCorrect], part.c[kCorrect], a5);
    std::int64_t* __restrict cn = part.cn;
    std::int64_t* __restrict bn = part.bn;
    for (std::size_t j = 0; j < m; ++j) {  // loss: w loss, br: w [correct], py: w conf, arg: the bin
      const int c = yl[j];
      lc[c] += wl[j];
      lc[K + c] += loss[j];
      cn[c] += 1;
      const int b = arg[j];
      lb[b] += wl[j];
      lb[nb + b] += py[j];
      lb[2 * nb + b] += br[j];
      bn[b] += 1;
    }
    since_flush += m;
    if (since_flush >= kFlushRows || i + m >= end) {
      flush(lc, part.cs, part.cc, 3 * K);
      flush(lb, part.bs, part.bc, 3 * nb);
      since_flush = 0;
    }
  }
}

// ---- AUC score histograms (binary) ---------------------------------------------------

// The bin of a score, bit for bit as xent/metrics/_auc.py `score_bins`:
//   probabilities: q2 = 2 min(p, 1 - p) as float32 (1 - p exact for p >= 1/2); its octave
//     e (q2 = 2**e * 1.m) and top mantissa bits index one side, mirrored above p = 1/2;
//   logits: the same of |x| as float32 over octaves [-octaves/2, octaves/2), x > 0 above.
template <class P, bool LOGITS>
inline std::int64_t score_bin(P v, int octaves, int mbits) {
  const std::int64_t half = static_cast<std::int64_t>(octaves) << mbits;
  const double x = static_cast<double>(v);
  float f;
  bool high;
  if (LOGITS) {
    high = x > 0.0;
    f = static_cast<float>(__builtin_fabs(x));
  } else {
    high = x > 0.5;
    f = static_cast<float>(2.0 * (high ? 1.0 - x : x));
  }
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const std::int64_t e = static_cast<std::int64_t>(bits >> 23) - 127 + (LOGITS ? octaves / 2 : octaves);
  std::int64_t h = (e << mbits) + ((bits >> (23 - mbits)) & ((1u << mbits) - 1));
  h = h < 0 ? 0 : (h >= half ? half - 1 : h);
  if (LOGITS) return high ? half + h : half - 1 - h;
  return high ? 2 * half - 1 - h : h;
}

struct HistJob {
  const Batch* batch;
  const Histogram* hist;
  std::size_t parts;  // the bins are cut into this many ranges, one task each
};

template <class Y, class P, bool LOGITS>
void histogram_task(void* ctx, std::size_t t) {
  const HistJob& job = *static_cast<const HistJob*>(ctx);
  const Batch& b = *job.batch;
  const Histogram& h = *job.hist;
  const std::int64_t lo = h.n_bins * static_cast<std::int64_t>(t) / static_cast<std::int64_t>(job.parts);
  const std::int64_t hi = h.n_bins * static_cast<std::int64_t>(t + 1) / static_cast<std::int64_t>(job.parts);
  const Y* y = static_cast<const Y*>(b.labels);
  const P* p = static_cast<const P*>(b.pred[0]);
  const double* w = b.weights;
  constexpr std::size_t kBlock = 1024;
  std::int64_t idx[kBlock];
  for (std::size_t i = 0; i < b.n; i += kBlock) {
    const std::size_t m = b.n - i < kBlock ? b.n - i : kBlock;
    for (std::size_t j = 0; j < m; ++j) idx[j] = score_bin<P, LOGITS>(p[i + j], h.octaves, h.mantissa_bits);
    for (std::size_t j = 0; j < m; ++j) {
      const std::int64_t k = idx[j];
      if (k < lo || k >= hi) continue;
      double* dst = y[i + j] == 1 ? h.pos : h.neg;
      dst[k] += w ? w[i + j] : 1.0;
    }
  }
}

template <class Y, class P>
TaskFn histogram_for(bool logits) {
  return logits ? histogram_task<Y, P, true> : histogram_task<Y, P, false>;
}

void binary_histogram(const Batch& b, const Options& o, const Histogram& h) {
  if (b.n == 0 || h.n_bins < 1) return;
  TaskFn fn;
  if (b.label_type == Labels::i8)
    fn = b.pred_type == Floats::f32 ? histogram_for<std::int8_t, float>(o.logits)
                                    : histogram_for<std::int8_t, double>(o.logits);
  else
    fn = b.pred_type == Floats::f32 ? histogram_for<std::int64_t, float>(o.logits)
                                    : histogram_for<std::int64_t, double>(o.logits);
  // each task owns a range of bins: no two threads write one bin, and a bin's additions
  // come in row order whatever the thread count (the same sums for any threads)
  std::size_t parts = o.threads > 1 ? static_cast<std::size_t>(o.threads) : 1;
  HistJob job{&b, &h, parts};
  parallel_for(o.threads, parts, fn, &job);
}

// ---- entry points -------------------------------------------------------------------

using Rows = void (*)(const Job&, Part&, std::size_t, std::size_t);

template <class Y, class P>
Rows binary_for(const Batch& b, const Options& o) {
  if (o.logits) return b.weights ? binary_rows<Y, P, true, true> : binary_rows<Y, P, false, true>;
  return b.weights ? binary_rows<Y, P, true, false> : binary_rows<Y, P, false, false>;
}

std::int64_t binary(const Batch& b, const Options& o, const Sums& sums) {
  Rows rows;
  if (b.label_type == Labels::i8)
    rows = b.pred_type == Floats::f32 ? binary_for<std::int8_t, float>(b, o) : binary_for<std::int8_t, double>(b, o);
  else
    rows = b.pred_type == Floats::f32 ? binary_for<std::int64_t, float>(b, o) : binary_for<std::int64_t, double>(b, o);
  return run(b, o, sums, kBinaryGrain, rows);
}

template <class P>
Rows multi_for(const Batch& b, const Options& o) {
  if (b.stride == 1) return o.logits ? multi_rows<P, true, true> : multi_rows<P, false, true>;
  return o.logits ? multi_rows<P, true, false> : multi_rows<P, false, false>;
}

std::int64_t multiclass(const Batch& b, const Options& o, const Sums& sums) {
  Rows rows = b.pred_type == Floats::f32 ? multi_for<float>(b, o) : multi_for<double>(b, o);
  std::size_t k = static_cast<std::size_t>(sums.n_classes);
  std::size_t grain = (std::size_t(1) << 19) / (k ? k : 1);  // about 2 MB of float32 predictions per task
  grain = grain < 4096 ? 4096 : grain;
  return run(b, o, sums, grain, rows);
}

}  // namespace

extern const Table table = {binary, multiclass, binary_histogram};

}  // namespace xent::metrics::XENT_ISA_NS
