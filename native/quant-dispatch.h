// Entry point of the quantized products (quant.h) for the N-API binding.
#pragma once

#include "quant.h"

namespace moesaic {

// y = x · Wᵀ (or the fused SwiGLU when a.up is set) with x[a.rows, a.k] f32; a.k a multiple of the
// dtype's block size. Quantizes x to int8 blocks, then splits the columns over the thread pool.
void runQuantMatmul(const QuantMatmulArgs& a, const float* x);

// The quantized kernels' instruction set now ("portable", "avx2" or "avx512-vnni").
const char* quantIsa();

}  // namespace moesaic
