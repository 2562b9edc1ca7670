import type { Backend } from './backend.js';
import { swiGluExpertsByGroup } from './backend.js';
import { bf16ToF32, f32ToBf16 } from './dtype.js';

/**
 * How `matmul` and `swiGlu` multiply bf16 weights. `exact` widens the weights and keeps the f32
 * activations. `bf16` first rounds the activations to bf16 (round to nearest even, as llama.cpp does
 * for bf16 weights), so the CPU's AVX-512 BF16 dot products (`vdpbf16ps`) can multiply two bf16 pairs
 * per lane; see docs/kernels.md for the error it adds. Weights of other dtypes are computed exactly in
 * either mode.
 */
export type MatmulPrecision = 'exact' | 'bf16';
export const MATMUL_PRECISIONS: readonly MatmulPrecision[] = ['exact', 'bf16'];

/** The first `n` values of x, each rounded to the nearest bf16 (ties to even), as f32. */
export function roundToBf16(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = bf16ToF32(f32ToBf16(x[i]!));
  return out;
}

/**
 * The reference of the bf16 mode: `base` (the reference backend) with the activations of every
 * product with bf16 weights rounded to bf16 first. Products are then accumulated as `base` does
 * (float64), so the native bf16 kernels are checked against exactly the rounding the mode specifies.
 */
export function bf16ActivationsBackend(base: Backend): Backend {
  const rounded: Backend = {
    ...base,
    name: `${base.name}+bf16`,
    matmul(y, x, w, rows, bias) {
      base.matmul(y, w.dtype === 'bf16' ? roundToBf16(x, rows * w.shape[1]!) : x, w, rows, bias);
    },
    swiGlu(out, x, gate, up, rows) {
      base.swiGlu(out, gate.dtype === 'bf16' ? roundToBf16(x, rows * gate.shape[1]!) : x, gate, up, rows);
    },
    swiGluExperts(out, x, act, experts, rowStarts) {
      swiGluExpertsByGroup(rounded, out, x, act, experts, rowStarts);
    },
  };
  return rounded;
}
