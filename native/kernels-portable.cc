// Kernels for any CPU: built without -m flags (SSE2 on x86-64, the baseline of every x86-64 CPU).
#define MOESAIC_ISA_NS portable
#define MOESAIC_ISA_NAME "portable"
#define MOESAIC_KERNELS kPortableKernels
#include "kernels-impl.h"
