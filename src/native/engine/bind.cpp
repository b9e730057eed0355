// Python bindings of the engine kernels: shape checks, GIL release, dispatch to the
// table of the CPU's variant (kernels.hpp). Compiled once, for the baseline.
//
// Every entry point takes NumPy arrays as they are (any strides, no copy) and checks
// dtypes and shapes, so a wrong call raises instead of reading out of bounds. The
// caller (xent.engine._native) views logits-shaped arrays as (outer, classes, inner)
// and per-example arrays as (outer, inner).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels.hpp"

namespace nb = nanobind;

namespace xent {
namespace {

using engine::i64;
using In = nb::ndarray<nb::ro, nb::device::cpu>;
using Out = nb::ndarray<nb::device::cpu>;
using OptIn = std::optional<In>;
using OptOut = std::optional<Out>;

// The variant in use: the best one, or the one a test picked with set_isa.
const engine::Table* g_table = nullptr;
Isa g_isa = Isa::baseline;

const engine::Table& table() {
  if (!g_table) {
    g_isa = best_isa();
    g_table = &engine::table_for(g_isa);
  }
  return *g_table;
}

enum class Dt { f32, f64, i64, other };

template <class A>
Dt dtype_of(const A& a) {
  if (a.dtype() == nb::dtype<float>()) return Dt::f32;
  if (a.dtype() == nb::dtype<double>()) return Dt::f64;
  if (a.dtype() == nb::dtype<std::int64_t>()) return Dt::i64;
  return Dt::other;
}

const char* dt_name(Dt d) {
  switch (d) {
    case Dt::f32: return "float32";
    case Dt::f64: return "float64";
    case Dt::i64: return "int64";
    default: return "another dtype";
  }
}

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

template <class A>
void check(const A& a, const char* name, std::size_t ndim, Dt want) {
  if (a.ndim() != ndim) fail(std::string("`") + name + "` must have " + std::to_string(ndim) + " dimensions");
  if (dtype_of(a) != want)
    fail(std::string("`") + name + "` must be " + dt_name(want) + ", got " + dt_name(dtype_of(a)));
}

template <class A>
void check_shape(const A& a, const char* name, std::initializer_list<i64> shape) {
  std::size_t d = 0;
  for (i64 s : shape) {
    if (s >= 0 && static_cast<i64>(a.shape(d)) != s)
      fail(std::string("`") + name + "` has the wrong shape (axis " + std::to_string(d) + ")");
    ++d;
  }
}

Dt float_dtype(const In& x) {
  Dt d = dtype_of(x);
  if (d != Dt::f32 && d != Dt::f64) fail(std::string("`x` must be float32 or float64, got ") + dt_name(d));
  return d;
}

engine::View view3(const In& a) { return {a.data(), a.stride(0), a.stride(1), a.stride(2)}; }
engine::OutView out3(const Out& a) { return {a.data(), a.stride(0), a.stride(1), a.stride(2)}; }
engine::View view2(const In& a) { return {a.data(), a.stride(0), 0, a.stride(1)}; }
engine::OutView out2(const Out& a) { return {a.data(), a.stride(0), 0, a.stride(1)}; }
engine::View none_view() { return {nullptr, 0, 0, 0}; }
engine::OutView none_out() { return {nullptr, 0, 0, 0}; }

void check_status(int status) {
  if (status == 1) throw std::bad_alloc();
}

double sum_in_order(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;  // task order: the result does not depend on the thread count
  return s;
}

// Check and attach the optional outputs of a softmax loss.
template <class Args>
void attach_outputs(Args& a, const OptOut& grad, const OptOut& loss, Dt d) {
  if (grad) {
    check(*grad, "grad", 3, d);
    check_shape(*grad, "grad", {a.outer, a.classes, a.inner});
    a.grad = out3(*grad);
  }
  if (loss) {
    check(*loss, "loss", 2, d);
    check_shape(*loss, "loss", {a.outer, a.inner});
    a.loss = out2(*loss);
  }
}

// Run a kernel that writes one float64 sum per task, without the GIL; return their sum in task order.
template <class Args>
double run_summed(Args& a, Dt d, i64 n_tasks, int (*f32)(const Args&), int (*f64)(const Args&)) {
  std::vector<double> sums(static_cast<std::size_t>(n_tasks), 0.0);
  a.task_sums = sums.data();
  int status;
  {
    nb::gil_scoped_release release;
    status = d == Dt::f32 ? f32(a) : f64(a);
  }
  check_status(status);
  return sum_in_order(sums);
}

void softmax(In x, Out out, int kind, int threads) {
  Dt d = float_dtype(x);
  check(x, "x", 3, d);
  if (kind < 0 || kind > 2) fail("`kind` must be 0 (logsumexp), 1 (log_softmax) or 2 (softmax)");
  const i64 O = x.shape(0), C = x.shape(1), I = x.shape(2);
  engine::SoftmaxArgs a{O, C, I, view3(x), {}, kind, threads};
  if (kind == engine::kLogsumexp) {
    check(out, "out", 2, d);
    check_shape(out, "out", {O, I});
    a.out = out2(out);
  } else {
    check(out, "out", 3, d);
    check_shape(out, "out", {O, C, I});
    a.out = out3(out);
  }
  if (C == 0) fail("`x` must have at least one class");
  int status;
  {
    nb::gil_scoped_release release;
    status = d == Dt::f32 ? table().softmax_f32(a) : table().softmax_f64(a);
  }
  check_status(status);
}

// The logits, class weights and sample weights every softmax loss takes.
template <class Args>
void logit_args(Args& a, const In& x, const OptIn& class_weights, const OptIn& weights, Dt d, int threads) {
  check(x, "x", 3, d);
  a.outer = x.shape(0);
  a.classes = x.shape(1);
  a.inner = x.shape(2);
  if (a.classes == 0) fail("`x` must have at least one class");
  a.x = view3(x);
  a.class_weights = nullptr;
  if (class_weights) {
    check(*class_weights, "class_weights", 1, d);
    check_shape(*class_weights, "class_weights", {a.classes});
    if (a.classes > 1 && class_weights->stride(0) != 1) fail("`class_weights` must be contiguous");
    a.class_weights = class_weights->data();
  }
  a.weights = none_view();
  if (weights) {
    check(*weights, "weights", 2, Dt::f64);
    check_shape(*weights, "weights", {a.outer, a.inner});
    a.weights = view2(*weights);
  }
  a.factor = 1.0;
  a.grad = none_out();
  a.loss = none_out();
  a.threads = threads;
}

engine::SparseArgs sparse_args(const In& x, const In& labels, const OptIn& class_weights, const OptIn& weights,
                               std::optional<i64> ignore_index, double smoothing, int threads, Dt& d) {
  d = float_dtype(x);
  engine::SparseArgs a{};
  logit_args(a, x, class_weights, weights, d, threads);
  check(labels, "labels", 2, Dt::i64);
  check_shape(labels, "labels", {a.outer, a.inner});
  a.labels = view2(labels);
  a.has_ignore = ignore_index.has_value();
  a.ignore_index = ignore_index.value_or(0);
  a.smoothing = smoothing;
  return a;
}

double sparse(In x, In labels, OptIn class_weights, OptIn weights, std::optional<i64> ignore_index,
              double smoothing, double factor, OptOut grad, OptOut loss, int threads) {
  Dt d;
  engine::SparseArgs a = sparse_args(x, labels, class_weights, weights, ignore_index, smoothing, threads, d);
  a.factor = factor;
  attach_outputs(a, grad, loss, d);
  return run_summed(a, d, engine::n_tasks(a.outer * a.inner, a.classes), table().sparse_f32, table().sparse_f64);
}

double sparse_denominator(In x, In labels, OptIn class_weights, OptIn weights, std::optional<i64> ignore_index,
                          int threads) {
  Dt d;
  engine::SparseArgs a = sparse_args(x, labels, class_weights, weights, ignore_index, 0.0, threads, d);
  return run_summed(a, d, engine::n_tasks(a.outer * a.inner, a.classes), table().sparse_denominator_f32,
                    table().sparse_denominator_f64);
}

engine::CategoricalArgs categorical_args(const In& x, const In& targets, const OptIn& class_weights,
                                         const OptIn& weights, double smoothing, int threads, Dt& d) {
  d = float_dtype(x);
  engine::CategoricalArgs a{};
  logit_args(a, x, class_weights, weights, d, threads);
  check(targets, "targets", 3, d);
  check_shape(targets, "targets", {a.outer, a.classes, a.inner});
  a.targets = view3(targets);
  a.smoothing = smoothing;
  return a;
}

double categorical(In x, In targets, OptIn class_weights, OptIn weights, double smoothing, double factor,
                   OptOut grad, OptOut loss, int threads) {
  Dt d;
  engine::CategoricalArgs a = categorical_args(x, targets, class_weights, weights, smoothing, threads, d);
  a.factor = factor;
  attach_outputs(a, grad, loss, d);
  return run_summed(a, d, engine::n_tasks(a.outer * a.inner, a.classes), table().categorical_f32,
                    table().categorical_f64);
}

double categorical_denominator(In x, In targets, OptIn class_weights, OptIn weights, int threads) {
  Dt d;
  engine::CategoricalArgs a = categorical_args(x, targets, class_weights, weights, 0.0, threads, d);
  return run_summed(a, d, engine::n_tasks(a.outer * a.inner, a.classes), table().categorical_denominator_f32,
                    table().categorical_denominator_f64);
}

double binary(In z, In y, OptIn weights, OptIn pos_weight, double smoothing, double factor, OptOut grad,
              OptOut loss, int threads) {
  Dt d = dtype_of(z);
  if (d != Dt::f32 && d != Dt::f64) fail(std::string("`z` must be float32 or float64, got ") + dt_name(d));
  check(z, "z", 2, d);
  const i64 R = z.shape(0), L = z.shape(1);
  auto operand = [&](const In& a, const char* name) {
    check(a, name, 2, d);
    check_shape(a, name, {R, L});
    return engine::View{a.data(), a.stride(0), a.stride(1), 0};
  };
  auto output = [&](const Out& a, const char* name) {
    check(a, name, 2, d);
    check_shape(a, name, {R, L});
    return engine::OutView{a.data(), a.stride(0), a.stride(1), 0};
  };
  engine::BinaryArgs a{};
  a.rows = R;
  a.cols = L;
  a.z = operand(z, "z");
  a.y = operand(y, "y");
  a.weights = weights ? operand(*weights, "weights") : none_view();
  a.pos_weight = pos_weight ? operand(*pos_weight, "pos_weight") : none_view();
  a.smoothing = smoothing;
  a.factor = factor;
  a.grad = grad ? output(*grad, "grad") : none_out();
  a.loss = loss ? output(*loss, "loss") : none_out();
  a.threads = threads;
  return run_summed(a, d, engine::binary_tasks(R, L), table().binary_f32, table().binary_f64);
}

void set_isa(const std::string& name) {
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512}) {
    if (name != isa_name(isa)) continue;
    if (static_cast<int>(isa) > static_cast<int>(best_isa()))
      fail("`isa` '" + name + "' is not usable here (best: '" + isa_name(best_isa()) + "')");
#ifndef XENT_X86_DISPATCH
    if (isa != Isa::baseline) fail("`isa` '" + name + "' is not compiled into this build");
#endif
    g_table = &engine::table_for(isa);
    g_isa = isa;
    return;
  }
  fail("`isa` must be 'baseline', 'avx2' or 'avx512', got '" + name + "'");
}

}  // namespace

void register_engine(nb::module_& m) {
  nb::module_ sub = m.def_submodule("engine", "The engine kernels (see src/native/engine/kernels.hpp).");
  sub.def("softmax", &softmax, nb::arg("x"), nb::arg("out"), nb::arg("kind"), nb::arg("threads"),
          "kind 0: out[o, i] = logsumexp(x[o, :, i]); 1: out = log_softmax(x, axis=1); 2: softmax.");
  sub.def("sparse", &sparse, nb::arg("x"), nb::arg("labels"), nb::arg("class_weights").none(),
          nb::arg("weights").none(), nb::arg("ignore_index").none(), nb::arg("smoothing"), nb::arg("factor"),
          nb::arg("grad").none(), nb::arg("loss").none(), nb::arg("threads"),
          "Sparse categorical cross-entropy of (O, C, I) logits; returns sum of s k l (kernels.hpp).");
  sub.def("sparse_denominator", &sparse_denominator, nb::arg("x"), nb::arg("labels"),
          nb::arg("class_weights").none(), nb::arg("weights").none(), nb::arg("ignore_index").none(),
          nb::arg("threads"), "The mean's denominator sum s k w_y.");
  sub.def("categorical", &categorical, nb::arg("x"), nb::arg("targets"), nb::arg("class_weights").none(),
          nb::arg("weights").none(), nb::arg("smoothing"), nb::arg("factor"), nb::arg("grad").none(),
          nb::arg("loss").none(), nb::arg("threads"),
          "Categorical cross-entropy of (O, C, I) logits and targets; returns sum of s l.");
  sub.def("categorical_denominator", &categorical_denominator, nb::arg("x"), nb::arg("targets"),
          nb::arg("class_weights").none(), nb::arg("weights").none(), nb::arg("threads"),
          "The mean's denominator sum s sum_c w_c t_c.");
  sub.def("binary", &binary, nb::arg("z"), nb::arg("y"), nb::arg("weights").none(), nb::arg("pos_weight").none(),
          nb::arg("smoothing"), nb::arg("factor"), nb::arg("grad").none(), nb::arg("loss").none(),
          nb::arg("threads"), "Binary cross-entropy with logits over (R, L) views; returns sum of s l.");
  sub.def("isa", [] {
    table();
    return std::string(isa_name(g_isa));
  }, "The variant the engine kernels run.");
  sub.def("set_isa", &set_isa, nb::arg("name"),
          "Run the engine kernels of one compiled variant (for tests; the default is the best one).");
}

}  // namespace xent
