// The engine kernels, compiled once per instruction set (rules in common/isa.hpp).
#include "common/isa.hpp"
