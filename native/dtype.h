// Weight element types, numbered as in src/tensor/dtype.ts (DTYPE_CODE). Activations are always f32;
// weights keep their file dtype and are widened to f32 inside the kernels.
#pragma once

namespace moesaic {

enum DType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

}  // namespace moesaic
