// Kernels for x86-64 with AVX-512 F/BW/VL/DQ (Skylake-X / Zen 4 and later); built with those -m flags
// only, and called only after dispatch.cc has checked the CPU supports them.
#define MOESAIC_ISA_NS avx512
#define MOESAIC_ISA_NAME "avx512"
#define MOESAIC_KERNELS kAvx512Kernels
#include "kernels-impl.h"
