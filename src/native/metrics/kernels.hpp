// The scorer's one-pass metric kernels: what they read, the state they fold into, and
// the per-instruction-set table (pattern: common/vecmath_kernels.hpp).
//
// A kernel reads one batch of rows once and computes every metric's sufficient
// statistics together: log loss, Brier, accuracy, calibration bins and, for
// multi-class input, the per-class sums. It validates as it goes; when a row is
// invalid it returns that row's index (the first one) and leaves the state as it
// was, otherwise it folds the batch into the state and returns -1.
//
// Summation: rows are cut into tasks of a fixed size (parallel_for hands them to
// threads); inside a task, blocks of rows are summed in float64 and each block
// total is added to the task's compensated (Neumaier) sums; the tasks' sums are
// then merged into the state in task order with an error-free TwoSum. The result
// does not depend on the thread count, and any split of the data agrees to ~1e-13.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/cpu.hpp"

namespace xent::metrics {

// One compensated float64 sum per element: the value is s[i] + c[i]
// (Python: xent/metrics/_sums.py, an array of shape (2, ...) per field).
// Every struct here is trivial (no default member initialisers): an implicitly defined
// constructor would be an inline function compiled once per instruction set (isa.hpp).
struct Comp {
  double* s;
  double* c;
};

// The scorer's state as the kernels see it: one named field per sufficient statistic,
// named as the fields of xent.metrics._state (BINARY_FIELDS, MULTICLASS_FIELDS). A
// field the state does not have is null: binary states have no class fields,
// multi-class states no label/prediction sums.
struct Sums {
  std::int64_t n_bins;
  std::int64_t n_classes;      // 0: binary
  std::int64_t* rows;    // rows folded in
  Comp weight;                     // sum w
  Comp weighted_labels;            // binary: sum w y
  Comp weighted_predictions;       // binary: sum w p
  Comp loss;                       // sum w loss
  Comp brier;                      // binary: sum w (p - y)^2; multi-class: sum w sum_k (p_k - [y = k])^2
  Comp correct;                    // sum w [the prediction is right]
  Comp bin_weight;                 // per calibration bin: sum w
  Comp bin_prediction;             // per bin: sum w p (binary) or sum w confidence (multi-class)
  Comp bin_outcome;                // per bin: sum w y (binary) or sum w [correct] (multi-class)
  std::int64_t* bin_rows;
  Comp class_weight;               // per class k: sum w [y = k]
  Comp class_loss;                 // per class k: sum w loss [y = k]
  Comp class_prediction;           // per class k: sum w p_k over every row
  std::int64_t* class_rows;
};

enum class Labels : int { i8 = 0, i64 = 1 };
enum class Floats : int { f32 = 0, f64 = 1 };

// One batch of rows. Binary: pred[0] is the probability or logit column. Multi-class:
// pred[k] is class k's column. Rows of a prediction column are `stride` elements apart
// (1 for a column, K for a row-major (n, K) matrix); labels and weights are contiguous.
struct Batch {
  std::size_t n;
  const void* labels;
  Labels label_type;
  const void* const* pred;
  std::ptrdiff_t stride;
  Floats pred_type;
  const double* weights;  // null: every weight is 1
};

struct Options {
  bool logits;     // predictions are logits (log-sigmoid / log-softmax, never clipped)
  double eps;        // probabilities are clipped to [eps, 1 - eps] for the log loss
  double tolerance;  // multi-class probability rows must sum to 1 within this
  int threads;
};

// Return values besides -1 and row indices.
constexpr std::int64_t kOutOfMemory = -2;

// The binary AUC score histograms (xent/metrics/_auc.py, `score_bins`): per bin, the weight
// of positive and of negative rows. Bins are folded float32 bits of the probability (or of
// the logit's magnitude), `octaves` octaves of 2**`mantissa_bits` bins per side.
struct Histogram {
  double* pos;
  double* neg;
  std::int64_t n_bins;  // 2 * octaves << mantissa_bits
  int octaves;
  int mantissa_bits;
};

struct Table {
  std::int64_t (*binary)(const Batch& batch, const Options& options, const Sums& sums);
  std::int64_t (*multiclass)(const Batch& batch, const Options& options, const Sums& sums);
  // adds a batch of valid binary rows to `hist` (after `binary` returned -1)
  void (*binary_histogram)(const Batch& batch, const Options& options, const Histogram& hist);
};

namespace baseline { extern const Table table; }
#ifdef XENT_X86_DISPATCH
namespace avx2 { extern const Table table; }
namespace avx512 { extern const Table table; }
#endif

inline const Table& table_for(Isa isa) {
#ifdef XENT_X86_DISPATCH
  if (isa == Isa::avx512) return avx512::table;
  if (isa == Isa::avx2) return avx2::table;
#endif
  (void)isa;
  return baseline::table;
}

}  // namespace xent::metrics
