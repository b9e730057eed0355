// Helpers shared by the engine kernels: constants, strided access, copies.
// Included by kernels.cpp only, compiled once per instruction set (rules in common/isa.hpp).
#pragma once

#include "common/simd.hpp"
#include "common/vecmath.hpp"
#include "engine/kernels.hpp"

namespace xent::engine::XENT_ISA_NS {
namespace {

using simd::hmax;
using simd::hsum;
using simd::Lanes;
using simd::loadu;
using simd::select;
using simd::splat;
using simd::storeu;
using simd::widen;

constexpr int kChunkVecs = 8;  // vectors per chunk of the online max

// Pass 1 stores and sums the terms scaled by 2^B (vm::ExpmScale: float 2^64, double 2^512),
// so that the terms of a confident row, far below the smallest normal number, still count.
template <class T>
constexpr int kBias = vm::ExpmScale<T>::bits;
template <class T>
inline double pow2(int b) {
  return simd::float_from_bits(static_cast<std::int64_t>(1023 + b) << 52);
}

template <class T>
inline T lowest();
template <>
inline float lowest<float>() {
  return -3.40282346638528859812e+38f;
}
template <>
inline double lowest<double>() {
  return -1.7976931348623157e308;
}
inline double inf() { return vm::inf_f64(); }
inline double nan() { return simd::float_from_bits(std::int64_t{0x7FF8000000000000LL}); }
inline bool finite(double v) { return v - v == 0.0; }
inline i64 imin(i64 a, i64 b) { return a < b ? a : b; }
inline i64 round_up(i64 n, i64 m) { return (n + m - 1) / m * m; }

template <class T>
inline const T* at(const View& v, i64 o, i64 i) {
  return static_cast<const T*>(v.data) + o * v.s0 + i * v.s2;
}
template <class T>
inline T* at(const OutView& v, i64 o, i64 i) {
  return static_cast<T*>(v.data) + o * v.s0 + i * v.s2;
}

template <class T>
void gather(T* dst, const T* src, i64 stride, i64 n) {
  for (i64 c = 0; c < n; ++c) dst[c] = src[c * stride];
}
template <class T>
void scatter(T* dst, i64 stride, const T* src, i64 n) {
  for (i64 c = 0; c < n; ++c) dst[c * stride] = src[c];
}
template <class T>
void fill(T* dst, i64 stride, i64 n, T v) {
  for (i64 c = 0; c < n; ++c) dst[c * stride] = v;
}

// A row as a contiguous array: the row itself, or a copy in `buf`.
template <class T>
const T* contiguous(const T* row, i64 stride, i64 n, T* buf) {
  if (stride == 1) return row;
  gather(buf, row, stride, n);
  return buf;
}

}  // namespace
}  // namespace xent::engine::XENT_ISA_NS
