// Weight element types, numbered as in src/tensor/dtype.ts (DTYPE_CODE). Activations are always f32;
// weights keep their file dtype and are widened to f32 inside the kernels.
#pragma once

namespace moesaic {

// Quantized block formats (native/quant.h).
enum DType : int { kF32 = 0, kBF16 = 1, kF16 = 2, kQ4_0 = 3, kQ8_0 = 4, kQ4_K = 5, kQ5_K = 6, kQ6_K = 7 };

}  // namespace moesaic
