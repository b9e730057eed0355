// xent._native: the compiled kernels behind xent's engine and scorer.
//
// One extension module, one submodule per kernel family:
//   xent._native.engine   fused softmax / cross-entropy kernels (engine/)
//   xent._native.metrics  one-pass metric kernels for the scorer (metrics/)
// plus the CPU variant in use and the vector-math test entry points here.
// Every entry point takes NumPy arrays the Python side has validated and
// allocated, releases the GIL, and runs on `threads` threads (parallel.hpp).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/cpu.hpp"
#include "common/vecmath_kernels.hpp"

namespace nb = nanobind;

namespace xent {
void register_engine(nb::module_& m);
void register_metrics(nb::module_& m);
}  // namespace xent

namespace {

using xent::Isa;

std::vector<Isa> usable_isas() {
  std::vector<Isa> out{Isa::baseline};
#ifdef XENT_X86_DISPATCH
  if (static_cast<int>(xent::best_isa()) >= static_cast<int>(Isa::avx2)) out.push_back(Isa::avx2);
  if (xent::best_isa() == Isa::avx512) out.push_back(Isa::avx512);
#endif
  return out;
}

Isa isa_from_name(const std::string& name) {
  for (Isa isa : usable_isas())
    if (name == xent::isa_name(isa)) return isa;
  throw std::invalid_argument("`isa` must be one of the variants this CPU runs, got '" + name + "'");
}

template <class T>
using Vec = nb::ndarray<T, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

template <class T>
void apply(const std::string& fn, const std::string& isa, Vec<const T> x, Vec<T> out) {
  if (x.shape(0) != out.shape(0)) throw std::invalid_argument("`out` must have the length of `x`");
  const xent::vecmath::Table& t = xent::vecmath::table_for(isa_from_name(isa));
  constexpr bool f32 = sizeof(T) == 4;
  auto n = x.shape(0);
  nb::gil_scoped_release release;
  if (fn == "exp") f32 ? t.exp_f32((const float*)x.data(), (float*)out.data(), n)
                       : t.exp_f64((const double*)x.data(), (double*)out.data(), n);
  else if (fn == "log") f32 ? t.log_f32((const float*)x.data(), (float*)out.data(), n)
                            : t.log_f64((const double*)x.data(), (double*)out.data(), n);
  else if (fn == "log1p") f32 ? t.log1p_f32((const float*)x.data(), (float*)out.data(), n)
                              : t.log1p_f64((const double*)x.data(), (double*)out.data(), n);
  else if (fn == "log1p_pos" && !f32) t.log1p_pos_f64((const double*)x.data(), (double*)out.data(), n);
  else throw std::invalid_argument("`fn` must be 'exp', 'log', 'log1p' or (float64) 'log1p_pos', got '" + fn + "'");
}

template <class T>
void apply_expm(const std::string& isa, Vec<const T> x, Vec<const T> m, Vec<T> out) {
  if (x.shape(0) != out.shape(0) || m.shape(0) != out.shape(0))
    throw std::invalid_argument("`m` and `out` must have the length of `x`");
  const xent::vecmath::Table& t = xent::vecmath::table_for(isa_from_name(isa));
  auto n = x.shape(0);
  nb::gil_scoped_release release;
  if constexpr (sizeof(T) == 4) t.expm_f32((const float*)x.data(), (const float*)m.data(), (float*)out.data(), n);
  else t.expm_f64((const double*)x.data(), (const double*)m.data(), (double*)out.data(), n);
}

}  // namespace

NB_MODULE(_native, m) {
  m.doc() = "xent's compiled kernels (see src/native/module.cpp).";
  m.def("isa", [] { return std::string(xent::isa_name(xent::best_isa())); },
        "The instruction-set variant the kernels run: 'avx512', 'avx2' or 'baseline'.");
  m.def(
      "usable_isas",
      [] {
        std::vector<std::string> names;
        for (Isa isa : usable_isas()) names.emplace_back(xent::isa_name(isa));
        return names;
      },
      "Every variant compiled in that this CPU can run (for tests).");
  m.def("vecmath", &apply<float>, nb::arg("fn"), nb::arg("isa"), nb::arg("x"), nb::arg("out"),
        "out = fn(x) with the kernels' vector math (fn: 'exp', 'log', 'log1p'), for the error-bound tests.");
  m.def("vecmath", &apply<double>, nb::arg("fn"), nb::arg("isa"), nb::arg("x"), nb::arg("out"));
  m.def("vecmath_expm", &apply_expm<float>, nb::arg("isa"), nb::arg("x"), nb::arg("m"), nb::arg("out"),
        "out = e^(x - m) with the kernels' vector math, for the error-bound tests.");
  m.def("vecmath_expm", &apply_expm<double>, nb::arg("isa"), nb::arg("x"), nb::arg("m"), nb::arg("out"));
  xent::register_engine(m);
  xent::register_metrics(m);
}
