// The reference path's rules (xent.primitives, xent.losses) for rows the fast kernels do not take:
// a NaN, a +inf, or every entry -inf. Slow (one scalar pass per rule), and rare.
// Included by kernels.cpp only, compiled once per instruction set (rules in common/isa.hpp).
#pragma once

#include "common/vecmath.hpp"
#include "engine/util.hpp"

namespace xent::engine::XENT_ISA_NS {
namespace {

// log1p on the reference's `rest` (>= -1, or inf / NaN for rows with +inf / NaN).
inline double rest_log1p(double r) {
  if (!(r == r) || r < -1.0) return nan();
  if (r == -1.0) return -inf();
  if (r == inf()) return inf();
  if (r < 0.0) return vm::log_f64(1.0 + r);
  return vm::log1p_pos_f64(r);
}

// The reference's shift (xent.primitives._softmax_parts): the row max, NaN if any entry
// is NaN, replaced by 0 when not finite; rest = sum of the terms not at the shift + (number
// at the shift - 1). Terms are rounded to T as the reference's are (overflow included).
template <class T>
struct RefRow {
  double m, rest, lse;
};

template <class T>
RefRow<T> reference_row(const T* x, i64 xs, i64 C) {
  double m = -inf();
  bool nan = false;
  for (i64 c = 0; c < C; ++c) {
    double v = static_cast<double>(x[c * xs]);
    if (v != v) nan = true;
    else if (v > m) m = v;
  }
  if (nan || !finite(m)) m = 0.0;
  double n_max = 0.0, rest = 0.0;
  for (i64 c = 0; c < C; ++c) {
    double sh = static_cast<double>(x[c * xs]) - m;
    if (sh == 0.0) n_max += 1.0;
    else rest += static_cast<double>(static_cast<T>(vm::exp_f64(sh)));
  }
  rest += n_max - 1.0;
  return {m, rest, rest_log1p(rest)};
}

template <class T>
inline double ref_term(const T* x, double m) {
  return static_cast<double>(static_cast<T>(vm::exp_f64(static_cast<double>(*x) - m)));
}

}  // namespace
}  // namespace xent::engine::XENT_ISA_NS
