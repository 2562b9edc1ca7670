// Kernels for x86-64 with AVX2 + FMA + F16C (Haswell / Zen 1 and later); built with those -m flags
// only, and called only after dispatch.cc has checked the CPU supports them.
#define MOESAIC_ISA_NS avx2
#define MOESAIC_ISA_NAME "avx2"
#define MOESAIC_KERNELS kAvx2Kernels
#include "kernels-impl.h"
