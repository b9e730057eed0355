// Array versions of the vector math, for the tests of its error bounds
// (tests/native/test_vecmath.py) and as the smallest example of a dispatched family.
#pragma once

#include <cstddef>

#include "cpu.hpp"

namespace xent::vecmath {

struct Table {
  void (*exp_f32)(const float* x, float* out, std::size_t n);
  void (*exp_f64)(const double* x, double* out, std::size_t n);
  void (*log_f32)(const float* x, float* out, std::size_t n);
  void (*log_f64)(const double* x, double* out, std::size_t n);
  void (*log1p_f32)(const float* x, float* out, std::size_t n);
  void (*log1p_f64)(const double* x, double* out, std::size_t n);
  // out = e^(x - m), elementwise (x <= m)
  void (*expm_f32)(const float* x, const float* m, float* out, std::size_t n);
  void (*expm_f64)(const double* x, const double* m, double* out, std::size_t n);
  // out = log(1 + x), x >= 0 (the softmax row finish)
  void (*log1p_pos_f64)(const double* x, double* out, std::size_t n);
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

}  // namespace xent::vecmath
