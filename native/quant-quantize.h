// Native quantizers (the twin of src/tensor/quant/quantize.ts), for exports and --quantize at load.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace moesaic {

// Rows x[rows, k] (k a multiple of the dtype's block) into `out` (rows · k/block · bytes bytes), in
// ggml's block layout for the quantized dtype code, rows split over the thread pool.
void quantizeRows(int dtype, const float* x, size_t rows, size_t k, uint8_t* out);

}  // namespace moesaic
