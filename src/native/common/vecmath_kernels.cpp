// Compiled once per instruction set (see isa.hpp).
#include "vecmath_kernels.hpp"

#include "isa.hpp"
#include "vecmath.hpp"

namespace xent::vecmath::XENT_ISA_NS {
namespace {

template <class T, T (*F)(T)>
void apply(const T* x, T* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = F(x[i]);
}

}  // namespace

extern const Table table = {
    apply<float, vm::exp_f32>,   apply<double, vm::exp_f64>,   apply<float, vm::log_f32>,
    apply<double, vm::log_f64>, apply<float, vm::log1p_f32>, apply<double, vm::log1p_f64>,
};

}  // namespace xent::vecmath::XENT_ISA_NS
