// Kernels compiled once per instruction set, chosen at run time.
//
// A kernel source (engine/kernels.cpp, metrics/kernels.cpp, common/vecmath_kernels.cpp)
// is compiled once per variant listed in CMakeLists.txt (baseline, and on x86-64
// AVX2 and AVX-512) with -DXENT_ISA_NS=<variant> and that variant's -m flags; the
// variant's entry points live in namespace xent::<family>::XENT_ISA_NS and are
// collected in one table of function pointers per family (`Table table`), which
// the family's header picks with table_for(best_isa()); see vecmath_kernels.hpp
// for the smallest example. XENT_X86_DISPATCH is defined where the AVX2 and
// AVX-512 variants are compiled in.
//
// Rules for those sources, because one binary holds the same code compiled for
// several instruction sets and the linker keeps only one copy of any inline
// function or template instantiation with external linkage:
//   - put every helper in an anonymous namespace (vecmath.hpp does);
//   - use no standard-library templates (containers, algorithms, std::function,
//     numeric_limits): raw pointers, fixed-size arrays and __builtin_* only;
//   - reach threads through parallel_for's plain function pointer (parallel.hpp);
//   - never throw: report problems through return values.
#pragma once

#ifndef XENT_ISA_NS
#define XENT_ISA_NS baseline
#endif

#include "cpu.hpp"
