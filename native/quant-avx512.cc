// Quantized products with AVX-512 VNNI (vpdpbusd); built with -mavx512vnni and called only on CPUs
// that report it (dispatch falls back to the AVX2 table on AVX-512 CPUs without VNNI).
#define MOESAIC_QUANT_NS qavx512vnni
#define MOESAIC_QUANT_NAME "avx512-vnni"
#define MOESAIC_QUANT_TABLE kQuantAvx512Vnni
#include "quant-impl.h"
