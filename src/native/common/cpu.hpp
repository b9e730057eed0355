// Which instruction-set variant of the kernels this CPU runs (chosen once, at import).
#pragma once

namespace xent {

// 0: baseline (SSE2 on x86-64, NEON on aarch64, or portable C++ elsewhere),
// 1: AVX2 + FMA, 2: AVX-512 (F, DQ, BW, VL).
enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

// The best variant both compiled into this module and supported by this CPU.
// XENT_ISA=baseline|avx2|avx512 in the environment caps it (for testing every variant).
Isa best_isa();
const char* isa_name(Isa isa);

}  // namespace xent
