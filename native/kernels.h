// The kernel table: one instance per instruction set (portable, AVX2, AVX-512), each compiled from the
// same source (kernels-impl.h) in its own translation unit with its own -m flags, and chosen at run
// time by dispatch.cc. Every kernel works on a sub-range of its problem so the thread pool can split
// the work; a range never writes outside its own slice of the output.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace moesaic {

// How a matmul multiplies bf16 weights (docs/kernels.md): kExact widens them and keeps the f32
// activations; kBf16 rounds the activations to bf16 first (vdpbf16ps where the CPU has AVX-512 BF16).
// Other weight dtypes are computed exactly in either mode.
enum MatmulPrecision : int { kPrecisionExact = 0, kPrecisionBf16 = 1 };

// y[rows, n] = x[rows, k] · Wᵀ (+ bias[n]); W stored [n, k] row-major in dtype wDtype.
struct MatmulArgs {
  float* y;
  const float* x;
  const void* w;
  const void* bias;  // nullptr when absent
  int wDtype;
  int biasDtype;
  size_t rows, n, k;
  int precision;  // MatmulPrecision; zero-initialised = exact
};

// y[rows, dim] = x / sqrt(mean(x²) + eps) * g; y may alias x.
struct RmsNormArgs {
  float* y;
  const float* x;
  const void* g;
  int gDtype;
  size_t rows, dim;
  float eps;
};

// Rotate-half RoPE in place on x[tokens, heads, headDim].
struct RopeArgs {
  float* x;
  size_t tokens, heads, headDim;
  double pos0, theta;
};

// Causal GQA attention; see src/tensor/backend.ts.
struct AttentionArgs {
  float* out;
  const float* q;
  const float* k;
  const float* v;
  size_t tokens, pos0, heads, kvHeads, headDim, window;
};

// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
struct SiluMulArgs {
  float* out;
  const float* gate;
  const float* up;
  size_t n;
};

// out[rows, n] = silu(x · Wgᵀ) * (x · Wuᵀ): a SwiGLU FFN's gate and up projections, fused. Wg and Wu
// are stored [n, k] in the same dtype.
struct SwiGluArgs {
  float* out;
  const float* x;
  const void* wg;
  const void* wu;
  int wDtype;
  size_t rows, n, k;
  int precision;  // MatmulPrecision of both projections; zero-initialised = exact
};

struct Kernels {
  const char* name;
  // Columns are computed in blocks of this many (thread ranges over n are aligned to it).
  size_t matmulColBlock;
  // Output rows [r0, r1) x columns [n0, n1).
  void (*matmul)(const MatmulArgs& a, size_t r0, size_t r1, size_t n0, size_t n1);
  void (*rmsNorm)(const RmsNormArgs& a, size_t r0, size_t r1);
  // Tokens [t0, t1); scratch holds at least headDim floats.
  void (*rope)(const RopeArgs& a, size_t t0, size_t t1, float* scratch);
  // Work items i = t * heads + h for i in [i0, i1); scratch holds at least pos0 + tokens floats.
  void (*attention)(const AttentionArgs& a, size_t i0, size_t i1, float* scratch);
  void (*siluMul)(const SiluMulArgs& a, size_t i0, size_t i1);
  // Sum of x[0, n): a pure streaming read, used to measure the machine's memory bandwidth.
  float (*streamSum)(const float* x, size_t n);
};

extern const Kernels kPortableKernels;
#if defined(MOESAIC_X86)
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels;
#endif

}  // namespace moesaic
