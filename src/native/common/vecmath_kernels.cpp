// Compiled once per instruction set (see isa.hpp).
#include "vecmath_kernels.hpp"

#include "isa.hpp"
#include "simd.hpp"
#include "vecmath.hpp"

namespace xent::vecmath::XENT_ISA_NS {
namespace {

using simd::Lanes;

// out[i] = F(x[i]): full vectors, then the tail one value at a time (the same template).
#define XENT_APPLY(NAME, T, F)                                          \
  void NAME(const T* x, T* out, std::size_t n) {                        \
    using V = Lanes<T>::V;                                              \
    constexpr std::size_t w = Lanes<T>::width;                          \
    std::size_t i = 0;                                                  \
    for (; i + w <= n; i += w) simd::storeu(out + i, F(simd::loadu<V>(x + i))); \
    for (; i < n; ++i) out[i] = F(x[i]);                                \
  }

XENT_APPLY(exp32, float, vm::exp)
XENT_APPLY(exp64, double, vm::exp)
XENT_APPLY(log32, float, vm::log)
XENT_APPLY(log64, double, vm::log)
XENT_APPLY(log1p32, float, vm::log1p_unit)
XENT_APPLY(log1p64, double, vm::log1p_unit)
XENT_APPLY(log1p_pos64, double, vm::log1p_pos_f64x)
#undef XENT_APPLY

template <class T>
void expm_apply(const T* x, const T* m, T* out, std::size_t n) {
  using V = typename Lanes<T>::V;
  constexpr std::size_t w = Lanes<T>::width;
  std::size_t i = 0;
  for (; i + w <= n; i += w) simd::storeu(out + i, vm::expm(simd::loadu<V>(x + i), simd::loadu<V>(m + i)));
  for (; i < n; ++i) out[i] = vm::expm(x[i], m[i]);
}

}  // namespace

extern const Table table = {
    exp32, exp64, log32, log64, log1p32, log1p64, expm_apply<float>, expm_apply<double>, log1p_pos64,
};

}  // namespace xent::vecmath::XENT_ISA_NS
