// The engine kernels: softmax family and cross-entropy losses with their gradients.
//
// Logits-shaped arrays are strided (outer, classes, inner) views: element (o, c, i)
// of a view v is at v.data + o * v.s0 + c * v.s1 + i * v.s2 (strides in elements, any
// sign, 0 for broadcast axes). A "row" is one class vector, (o, :, i); rows are
// numbered r = o * inner + i. Per-example arrays are (outer, inner) views (s0, s2).
//
// Each kernel reads every row once, with an online (running-max) softmax normaliser
// (Milakov and Gimelshein, 2018), and writes each output once; per-row sums are
// float64, losses are reduced per task in float64 and the tasks' sums added in task
// order by the caller, so a result does not depend on the thread count. Rows that hold
// NaN or +inf, or are all -inf, follow the reference path's rules (xent.primitives).
//
// Compiled once per instruction set (kernels.cpp); bind.cpp picks the table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/cpu.hpp"

namespace xent::engine {

using i64 = std::int64_t;

struct View {
  const void* data;
  i64 s0, s1, s2;
};

struct OutView {
  void* data;  // null: not wanted
  i64 s0, s1, s2;
};

enum SoftmaxKind : int { kLogsumexp = 0, kLogSoftmax = 1, kSoftmax = 2 };

struct SoftmaxArgs {
  i64 outer, classes, inner;
  View x;
  OutView out;  // (O, C, I); for logsumexp an (O, I) view (s1 unused)
  int kind;
  int threads;
  double* task_sums = nullptr;  // unused: the outputs are the result
};

// Sparse categorical cross-entropy from logits. With smoothing e, class weights w
// (1 when absent), W = sum_c w_c, label y, sample weight s (1 when absent), keep k (0
// for an ignored label) and lse = logsumexp(x):
//   l = (1 - e) w_y (lse - x_y) + (e / C) sum_c w_c (lse - x_c)   (no label term if y is
//   outside [0, C), as the reference's all-zero one-hot row)
//   loss[r] = s k l (0 where s k = 0);  task_sums[t] = sum of s k l over task t's rows
//   grad row = factor s k ((w_y (1 - e) + e W / C) softmax(x) - (e / C) w - (1 - e) w_y onehot(y))
struct SparseArgs {
  i64 outer, classes, inner;
  View x;                    // float / double logits
  View labels;               // int64 (O, I)
  const void* class_weights; // (C,) contiguous, the logits' dtype, or null
  View weights;              // float64 (O, I) sample weights, data null: all 1
  i64 ignore_index;
  int has_ignore;
  double smoothing;
  double factor;             // d result / d (s k l): 1, or 1 / the mean's denominator
  OutView grad;              // logits-shaped, data null: no gradient
  OutView loss;              // (O, I), the logits' dtype, data null: not wanted
  double* task_sums;         // n_tasks(rows, classes) entries
  int threads;
};

// Categorical cross-entropy from logits with target distributions t (the logits' shape
// and dtype): a_c = w_c ((1 - e) t_c + e / C), A = sum_c a_c,
//   l = sum_c a_c (lse - x_c),  grad row = factor s (A softmax(x) - a).
struct CategoricalArgs {
  i64 outer, classes, inner;
  View x;
  View targets;
  const void* class_weights;
  View weights;
  double smoothing;
  double factor;
  OutView grad;
  OutView loss;
  double* task_sums;
  int threads;
};

// Binary cross-entropy with logits, elementwise over a (rows, cols) view of every
// operand (targets, weights and pos_weight may broadcast with 0 strides). With
// y' = y (1 - e) + e / 2, a = pos_weight y', b = 1 - y':
//   l = a log(1 + e^-z) + b log(1 + e^z),  grad = factor s (b sigmoid(z) - a sigmoid(-z)).
struct BinaryArgs {
  i64 rows, cols;
  View z;        // the logits' dtype; s0, s1 used
  View y;        // the logits' dtype
  View weights;  // the logits' dtype, data null: all 1
  View pos_weight;
  double smoothing;
  double factor;
  OutView grad;
  OutView loss;
  double* task_sums;
  int threads;
};

// Every kernel writes one float64 sum per task into task_sums (the caller adds them in task
// order) and returns 0, or 1 when scratch memory could not be allocated. The denominators of
// "mean": sum_r s_r k_r w_{y_r} (sparse; labels outside [0, C) count 0 with class weights, 1
// without) and sum_r s_r sum_c w_c t_rc (categorical, class weights given).
struct Table {
  int (*softmax_f32)(const SoftmaxArgs&);
  int (*softmax_f64)(const SoftmaxArgs&);
  int (*sparse_f32)(const SparseArgs&);
  int (*sparse_f64)(const SparseArgs&);
  int (*sparse_denominator_f32)(const SparseArgs&);
  int (*sparse_denominator_f64)(const SparseArgs&);
  int (*categorical_f32)(const CategoricalArgs&);
  int (*categorical_f64)(const CategoricalArgs&);
  int (*categorical_denominator_f32)(const CategoricalArgs&);
  int (*categorical_denominator_f64)(const CategoricalArgs&);
  int (*binary_f32)(const BinaryArgs&);
  int (*binary_f64)(const BinaryArgs&);
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

namespace {

// The task partition, shared by the kernels and the caller that sizes task_sums: tasks
// of whole rows, about 64k logits each, a multiple of 16 rows (every lane width) when
// there are fewer classes than that. It depends on the shape only.
constexpr i64 kTaskElements = i64{1} << 16;

inline i64 rows_per_task(i64 classes) {
  i64 c = classes > 0 ? classes : 1;
  i64 rows = kTaskElements / c;
  if (rows < 1) rows = 1;
  if (rows >= 16) rows -= rows % 16;
  return rows;
}

inline i64 n_tasks(i64 rows, i64 classes) {
  i64 per = rows_per_task(classes);
  return rows > 0 ? (rows + per - 1) / per : 0;
}

// Binary: tasks of kTaskElements elements over the flattened (rows, cols) view.
inline i64 binary_tasks(i64 rows, i64 cols) {
  i64 n = rows * cols;
  return n > 0 ? (n + kTaskElements - 1) / kTaskElements : 0;
}

}  // namespace

}  // namespace xent::engine
