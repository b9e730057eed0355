#include "cpu.hpp"

#include <cstdlib>
#include <cstring>

namespace xent {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

static Isa detect() {
#if defined(XENT_X86_DISPATCH) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::baseline;
}

Isa best_isa() {
  static const Isa chosen = [] {
    Isa isa = detect();
    if (const char* cap = std::getenv("XENT_ISA")) {
      Isa want = Isa::avx512;
      if (std::strcmp(cap, "baseline") == 0) want = Isa::baseline;
      else if (std::strcmp(cap, "avx2") == 0) want = Isa::avx2;
      if (static_cast<int>(want) < static_cast<int>(isa)) isa = want;
    }
    return isa;
  }();
  return chosen;
}

}  // namespace xent
