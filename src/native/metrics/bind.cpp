// Python bindings of the metrics kernels: shape checks, GIL release, dispatch to the
// table of the CPU's variant (kernels.hpp). Compiled once, for the baseline.
//
//   xent._native.metrics.binary(y, p, w, sums, logits, eps, threads, auc_octaves=0, auc_bits=0) -> int
//   xent._native.metrics.multiclass(y, columns, w, sums, logits, eps, tolerance, threads) -> int
//     (columns: an (n, K) array with any positive strides, or a list of K arrays of shape (n,))
//
// `sums` is the state's named structure (xent.metrics._sums.Sums): every field the
// kernel knows is read by name, as a float64 array of shape (2, size) (value and
// compensation) or an int64 array of shape (size,) (exact counts). The return value
// is -1 (folded) or the first invalid row (nothing folded).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cpu.hpp"
#include "metrics/kernels.hpp"

namespace nb = nanobind;

namespace xent {
namespace {

using metrics::Batch;
using metrics::Comp;
using metrics::Floats;
using metrics::Labels;
using metrics::Options;
using metrics::Sums;

using Column = nb::ndarray<nb::ro, nb::ndim<1>, nb::device::cpu>;
using Matrix = nb::ndarray<nb::ro, nb::ndim<2>, nb::device::cpu>;
using CompArray = nb::ndarray<double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using CountArray = nb::ndarray<std::int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Weights = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

[[noreturn]] void bad_field(const char* name, const std::string& what) {
  throw std::invalid_argument(std::string("`sums.") + name + "` must be " + what);
}

std::int64_t* count_field(nb::handle sums, const char* name, std::int64_t* size) {
  nb::object a = nb::getattr(sums, name, nb::none());
  if (a.is_none()) return nullptr;
  CountArray arr;
  if (!nb::try_cast(a, arr, false)) bad_field(name, "a writable C-contiguous 1-d int64 array");
  if (*size < 0) *size = static_cast<std::int64_t>(arr.shape(0));
  if (static_cast<std::int64_t>(arr.shape(0)) != *size)
    bad_field(name, "of length " + std::to_string(*size) + ", got " + std::to_string(arr.shape(0)));
  return arr.data();
}

Comp comp_field(nb::handle sums, const char* name, std::int64_t size) {
  nb::object a = nb::getattr(sums, name, nb::none());
  if (a.is_none()) return Comp{nullptr, nullptr};
  CompArray arr;
  if (!nb::try_cast(a, arr, false)) bad_field(name, "a writable C-contiguous float64 array of shape (2, n)");
  if (arr.shape(0) != 2 || static_cast<std::int64_t>(arr.shape(1)) != size)
    bad_field(name, "of shape (2, " + std::to_string(size) + ")");
  return Comp{arr.data(), arr.data() + size};
}

// The kernels' view of a Python Sums: every field by name. Binary states have no class
// fields; multi-class states no label/prediction sums (kernels.hpp).
Sums read_sums(nb::handle sums) {
  Sums s{};
  std::int64_t one = 1, nb_ = -1, k = -1;
  s.rows = count_field(sums, "rows", &one);
  s.bin_rows = count_field(sums, "bin_rows", &nb_);
  s.class_rows = count_field(sums, "class_rows", &k);
  if (!s.rows || !s.bin_rows) throw std::invalid_argument("`sums` must have the fields `rows` and `bin_rows`");
  s.n_bins = nb_;
  s.n_classes = s.class_rows ? k : 0;
  s.weight = comp_field(sums, "weight", 1);
  s.weighted_labels = comp_field(sums, "weighted_labels", 1);
  s.weighted_predictions = comp_field(sums, "weighted_predictions", 1);
  s.loss = comp_field(sums, "loss", 1);
  s.brier = comp_field(sums, "brier", 1);
  s.correct = comp_field(sums, "correct", 1);
  s.bin_weight = comp_field(sums, "bin_weight", s.n_bins);
  s.bin_prediction = comp_field(sums, "bin_prediction", s.n_bins);
  s.bin_outcome = comp_field(sums, "bin_outcome", s.n_bins);
  if (s.class_rows) {
    s.class_weight = comp_field(sums, "class_weight", k);
    s.class_loss = comp_field(sums, "class_loss", k);
    s.class_prediction = comp_field(sums, "class_prediction", k);
  }
  if (!s.weight.s || !s.loss.s || !s.brier.s || !s.correct.s || !s.bin_weight.s || !s.bin_prediction.s ||
      !s.bin_outcome.s)
    throw std::invalid_argument("`sums` lacks a field the kernel fills (weight, loss, brier, correct, bin_*)");
  if (s.n_bins < 1) throw std::invalid_argument("`sums.bin_rows` must hold at least one bin");
  return s;
}

Labels label_type(const Column& y) {
  if (y.dtype() == nb::dtype<std::int8_t>()) return Labels::i8;
  if (y.dtype() == nb::dtype<std::int64_t>()) return Labels::i64;
  throw std::invalid_argument("`y` must be an int8 or int64 array");
}

Floats float_type(const Column& p, const char* name) {
  if (p.dtype() == nb::dtype<float>()) return Floats::f32;
  if (p.dtype() == nb::dtype<double>()) return Floats::f64;
  throw std::invalid_argument(std::string("`") + name + "` must be a float32 or float64 array");
}

Batch batch_of(const Column& y, const std::optional<Weights>& w, std::size_t n) {
  if (y.stride(0) != 1 && y.shape(0) > 1) throw std::invalid_argument("`y` must be contiguous");
  if (y.shape(0) != n) throw std::invalid_argument("`y` and the predictions must have one length");
  Batch b{};
  b.n = n;
  b.labels = y.data();
  b.label_type = label_type(y);
  if (w) {
    if (w->shape(0) != n) throw std::invalid_argument("`w` must have the length of `y`");
    b.weights = w->data();
  }
  return b;
}

std::int64_t finish(std::int64_t r) {
  if (r == metrics::kOutOfMemory) throw std::bad_alloc();
  return r;
}

using PlainArray = nb::ndarray<double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// The binary state's AUC histograms (`sums.auc_pos`, `sums.auc_neg`: float64 of one length), or none.
metrics::Histogram read_histogram(nb::handle sums, int octaves, int mantissa_bits) {
  metrics::Histogram h{nullptr, nullptr, 0, octaves, mantissa_bits};
  nb::object a = nb::getattr(sums, "auc_pos", nb::none()), b = nb::getattr(sums, "auc_neg", nb::none());
  if (a.is_none() || b.is_none() || octaves < 1) return h;
  PlainArray pa, pb;
  if (!nb::try_cast(a, pa, false) || !nb::try_cast(b, pb, false) || pa.shape(0) != pb.shape(0))
    throw std::invalid_argument("`sums.auc_pos` and `sums.auc_neg` must be writable float64 arrays of one length");
  if (mantissa_bits < 0 || mantissa_bits > 23 ||
      static_cast<std::int64_t>(pa.shape(0)) != (static_cast<std::int64_t>(2 * octaves) << mantissa_bits))
    throw std::invalid_argument("`sums.auc_pos` must have 2 * auc_octaves * 2**auc_bits bins");
  h.pos = pa.data();
  h.neg = pb.data();
  h.n_bins = static_cast<std::int64_t>(pa.shape(0));
  return h;
}

std::int64_t binary(const Column& y, const Column& p, std::optional<Weights> w, nb::handle sums, bool logits,
                    double eps, int threads, int auc_octaves, int auc_bits) {
  Sums s = read_sums(sums);
  if (!s.weighted_labels.s || !s.weighted_predictions.s)
    throw std::invalid_argument("`sums` must be a binary state's (weighted_labels, weighted_predictions)");
  if (p.stride(0) != 1 && p.shape(0) > 1) throw std::invalid_argument("`p` must be contiguous");
  Batch b = batch_of(y, w, p.shape(0));
  const void* cols[1] = {p.data()};
  b.pred = cols;
  b.stride = 1;
  b.pred_type = float_type(p, "p");
  Options o{logits, eps, 0.0, threads < 1 ? 1 : threads};
  metrics::Histogram h = read_histogram(sums, auc_octaves, auc_bits);
  const metrics::Table& t = metrics::table_for(best_isa());
  nb::gil_scoped_release release;
  std::int64_t r = finish(t.binary(b, o, s));
  if (r < 0 && h.pos) t.binary_histogram(b, o, h);
  return r;
}

Sums multiclass_sums(nb::handle sums, std::size_t n_columns) {
  Sums s = read_sums(sums);
  if (!s.class_rows || s.n_classes < 1)
    throw std::invalid_argument("`sums` must be a multi-class state's (class_rows, class_weight, ...)");
  if (static_cast<std::int64_t>(n_columns) != s.n_classes)
    throw std::invalid_argument("`columns` must hold one column per class: " + std::to_string(s.n_classes) +
                                ", got " + std::to_string(n_columns));
  return s;
}

std::int64_t run_multiclass(const Column& y, const std::vector<const void*>& ptrs, std::size_t n,
                            std::int64_t stride, Floats ft, std::optional<Weights> w, const Sums& s, bool logits,
                            double eps, double tolerance, int threads) {
  if (stride < 1) throw std::invalid_argument("`columns` must have a positive row stride");
  Batch b = batch_of(y, w, n);
  b.pred = ptrs.data();
  b.stride = stride;
  b.pred_type = ft;
  Options o{logits, eps, tolerance, threads < 1 ? 1 : threads};
  const metrics::Table& t = metrics::table_for(best_isa());
  nb::gil_scoped_release release;
  return finish(t.multiclass(b, o, s));
}

// One array per class (columns of a table, read where they are).
std::int64_t multiclass_columns(const Column& y, const std::vector<Column>& columns, std::optional<Weights> w,
                                nb::handle sums, bool logits, double eps, double tolerance, int threads) {
  Sums s = multiclass_sums(sums, columns.size());
  std::size_t n = columns[0].shape(0);
  Floats ft = float_type(columns[0], "columns");
  std::int64_t stride = n > 1 ? columns[0].stride(0) : 1;
  std::vector<const void*> ptrs;
  ptrs.reserve(columns.size());
  for (const Column& c : columns) {
    if (c.shape(0) != n || float_type(c, "columns") != ft || (n > 1 && c.stride(0) != stride))
      throw std::invalid_argument("`columns` must share one length, dtype and stride");
    ptrs.push_back(c.data());
  }
  return run_multiclass(y, ptrs, n, stride, ft, w, s, logits, eps, tolerance, threads);
}

// An (n, K) matrix with any positive strides: column k starts k column-strides in.
std::int64_t multiclass_matrix(const Column& y, const Matrix& P, std::optional<Weights> w, nb::handle sums,
                               bool logits, double eps, double tolerance, int threads) {
  Sums s = multiclass_sums(sums, P.shape(1));
  Floats ft = P.dtype() == nb::dtype<float>() ? Floats::f32 : Floats::f64;
  if (P.dtype() != nb::dtype<float>() && P.dtype() != nb::dtype<double>())
    throw std::invalid_argument("`columns` must be a float32 or float64 array");
  std::size_t item = ft == Floats::f32 ? 4 : 8;
  std::vector<const void*> ptrs;
  ptrs.reserve(P.shape(1));
  for (std::size_t k = 0; k < P.shape(1); ++k)
    ptrs.push_back(static_cast<const char*>(P.data()) + static_cast<std::int64_t>(k) * P.stride(1) * item);
  std::int64_t stride = P.shape(0) > 1 ? P.stride(0) : 1;
  return run_multiclass(y, ptrs, P.shape(0), stride, ft, w, s, logits, eps, tolerance, threads);
}

// out[idx[i]] += (w ? w[i] : 1): the scatter of the segment and bucket sums (xent/metrics/_groups.py),
// into an existing array, without the dense temporary of numpy.bincount. Indices are checked.
using Indices = nb::ndarray<const std::int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Values = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

void scatter_add(PlainArray out, const Indices& idx, std::optional<Values> w) {
  const std::size_t n = idx.shape(0);
  if (w && w->shape(0) != n) throw std::invalid_argument("`w` must have the length of `idx`");
  const std::int64_t size = static_cast<std::int64_t>(out.shape(0));
  const std::int64_t* ix = idx.data();
  for (std::size_t i = 0; i < n; ++i)
    if (ix[i] < 0 || ix[i] >= size) throw std::invalid_argument("`idx` holds an index outside `out`");
  double* o = out.data();
  const double* wv = w ? w->data() : nullptr;
  nb::gil_scoped_release release;
  if (wv)
    for (std::size_t i = 0; i < n; ++i) o[ix[i]] += wv[i];
  else
    for (std::size_t i = 0; i < n; ++i) o[ix[i]] += 1.0;
}

}  // namespace

void register_metrics(nb::module_& m) {
  nb::module_ sub = m.def_submodule("metrics", "The scorer's one-pass metric kernels (src/native/metrics/).");
  sub.def("binary", &binary, nb::arg("y"), nb::arg("p"), nb::arg("w").none(), nb::arg("sums"), nb::arg("logits"),
          nb::arg("eps"), nb::arg("threads"), nb::arg("auc_octaves") = 0, nb::arg("auc_bits") = 0,
          "Fold a binary batch into `sums`: -1, or the first invalid row (sums untouched). With auc_octaves > 0, "
          "also the AUC histograms `sums.auc_pos` / `sums.auc_neg` (xent.metrics._auc).");
  // the matrix overload first: a 2-d array is also a sequence (of rows)
  sub.def("multiclass", &multiclass_matrix, nb::arg("y"), nb::arg("columns"), nb::arg("w").none(), nb::arg("sums"),
          nb::arg("logits"), nb::arg("eps"), nb::arg("tolerance"), nb::arg("threads"),
          "Fold a multi-class batch ((n, K) array, or one array per class) into `sums`: -1, or the first invalid "
          "row (sums untouched).");
  sub.def("scatter_add", &scatter_add, nb::arg("out"), nb::arg("idx"), nb::arg("w").none(),
          "out[idx[i]] += w[i] (1 when w is None), in place; `out` a flat float64 array.");
  sub.def("multiclass", &multiclass_columns, nb::arg("y"), nb::arg("columns"), nb::arg("w").none(), nb::arg("sums"),
          nb::arg("logits"), nb::arg("eps"), nb::arg("tolerance"), nb::arg("threads"));
}

}  // namespace xent
