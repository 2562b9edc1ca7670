// Quantized products with AVX-512 VNNI (vpdpbusd); built with -mavx512vnni and called only on CPUs
// that report it (dispatch falls back to the AVX2 table on AVX-512 CPUs without VNNI).
// GCC 12's AVX-512 headers pass an undefined vector as the masked builtins' pass-through operand and then
// warn about it (a known false positive); nothing here reads an undefined lane.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define MOESAIC_QUANT_NS qavx512vnni
#define MOESAIC_QUANT_NAME "avx512-vnni"
#define MOESAIC_QUANT_TABLE kQuantAvx512Vnni
#include "quant-impl.h"
