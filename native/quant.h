// Matrix products on ggml's block-quantized weights (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K; layouts in
// src/tensor/quant/formats.ts). Integer dot products, as llama.cpp does them: the activations are
// quantized per block of 32 to int8 (ggml's Q8_0 activation format: scale = max|x| / 127), the weights
// are unpacked block by block into unsigned 8-bit codes with per-16-weight scales and offsets, and
// codes × activations are summed in int32 four bytes at a time (AVX-512 VNNI vpdpbusd, AVX2 vpmaddubsw +
// vpmaddwd, or plain C), then scaled once per four bytes.
//
// With w = scale_g · u - offset_g for the 16-weight group g and x ≈ dx_b · q for the 32-activation block b:
//   Σ w·x ≈ Σ_lanes (Σ_4 u·q) · scale_g · dx_b  -  Σ_g offset_g · dx_b · (Σ_16 q).
// Each ISA's table is compiled from quant-impl.h in its own translation unit, like kernels-impl.h.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace moesaic {

// Activations of one matrix product, quantized once per call (rows x k).
struct QuantActs {
  const int8_t* q;      // [rows, k] codes in [-127, 127]
  const float* dx;      // [rows, k/32] the scale of every 32 codes
  const float* qs16;    // [rows, k/16] Σ q over every 16 codes (exact integers, as floats)
  const float* xs32;    // [rows, k/32] dx · Σ q over every 32 codes (the offsets' multiplier)
};

// y[rows, n] = x · Wᵀ, or with `up` the fused SwiGLU out = silu(x · Wᵀ) * (x · Upᵀ). W and Up are
// [n, k] in the same quantized dtype (code as in dtype.h), rows back to back.
struct QuantMatmulArgs {
  float* y;
  const uint8_t* w;
  const uint8_t* up;  // nullptr for a plain product
  int wDtype;
  size_t rows, n, k;
  size_t rowBytes;    // bytes of one weight row
};

struct QuantKernels {
  const char* name;
  // Quantize x[rows, k] (k a multiple of 32) into the activation buffers.
  void (*quantizeActs)(const float* x, size_t rows, size_t k, int8_t* q, float* dx, float* qs16, float* xs32);
  // Output columns [n0, n1) for all rows. scratch: quantScratchFloats(k, rows) floats.
  void (*matmul)(const QuantMatmulArgs& a, const QuantActs& x, size_t n0, size_t n1, float* scratch);
};

// Activation rows handled per pass over a column range: their codes and scales (~1.1 bytes per element)
// stay in L2 while each weight row is reused for all of them. A multiple of 4 (the register tile).
inline size_t quantRowTile(size_t k) {
  const size_t t = (256 * 1024) / (k + k / 8 + 1);
  return t < 4 ? 4 : t - t % 4;
}

// Floats of per-participant scratch a quantized product needs: an unpacked weight row (plain C path)
// and two row tiles of results.
inline size_t quantScratchFloats(size_t k) { return k / 4 + k / 4 + k / 16 + 2 * quantRowTile(k) + 16; }

bool isQuantDtype(int dtype);
// Weights per block and bytes per block of a quantized dtype code.
size_t quantBlock(int dtype);
size_t quantBlockBytes(int dtype);

extern const QuantKernels kQuantPortable;
#if defined(MOESAIC_X86)
extern const QuantKernels kQuantAvx2;
extern const QuantKernels kQuantAvx512Vnni;
#endif

}  // namespace moesaic
