// Python bindings of the metrics kernels: shape checks, GIL release, dispatch to the
// table of the CPU's variant (kernels.hpp). Compiled once, for the baseline.
#include <nanobind/nanobind.h>

namespace nb = nanobind;

namespace xent {

void register_metrics(nb::module_& m) {
  nb::module_ sub = m.def_submodule("metrics", "The metrics kernels.");
  (void)sub;
}

}  // namespace xent
