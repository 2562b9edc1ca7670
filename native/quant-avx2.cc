// Quantized products with AVX2 (vpmaddubsw + vpmaddwd); built with the AVX2 kernels' -m flags and
// called only on CPUs that have them.
#define MOESAIC_QUANT_NS qavx2
#define MOESAIC_QUANT_NAME "avx2"
#define MOESAIC_QUANT_TABLE kQuantAvx2
#include "quant-impl.h"
