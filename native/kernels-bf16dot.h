// The bf16 matmul precision mode's AVX-512 BF16 kernel (kernels-bf16dot.cc), built only where the
// compiler accepts -mavx512bf16 (binding.gyp then defines MOESAIC_BF16DOT) and called only where the CPU
// reports avx512bf16 (dispatch.cc checks).
#pragma once

#include <stddef.h>

#include "kernels.h"

namespace moesaic {

// Output rows [r0, r1) x columns [n0, n1) of y = bf16(x) · Wᵀ (+ bias) for bf16 weights W: each
// activation rounded to bf16 (round to nearest even), pairs of products accumulated in f32 by vdpbf16ps.
void matmulBf16Dot(const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1);

}  // namespace moesaic
