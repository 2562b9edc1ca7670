import type { QuantType } from './quant/formats.js';
import { QUANT_FORMATS } from './quant/formats.js';

/**
 * Element types of stored weights. Activations are always f32; weights keep their file dtype and are
 * widened inside the kernels (bf16/f16 -> f32 with f32 accumulation), so a bf16 model costs half the
 * memory traffic of an f32 one. The quantized types (ggml's block formats, quant/formats.ts) stay in
 * their blocks too: the kernels multiply them as integers (docs/quantization.md).
 */
export type FloatDType = 'f32' | 'bf16' | 'f16';
export type DType = FloatDType | QuantType;

/** Bytes per weight (fractional for the block formats: Q4_K is 144 bytes per 256 weights). */
export const DTYPE_BYTES: Record<DType, number> = {
  f32: 4,
  bf16: 2,
  f16: 2,
  q4_0: QUANT_FORMATS.q4_0.bytes / QUANT_FORMATS.q4_0.block,
  q8_0: QUANT_FORMATS.q8_0.bytes / QUANT_FORMATS.q8_0.block,
  q4_k: QUANT_FORMATS.q4_k.bytes / QUANT_FORMATS.q4_k.block,
  q5_k: QUANT_FORMATS.q5_k.bytes / QUANT_FORMATS.q5_k.block,
  q6_k: QUANT_FORMATS.q6_k.bytes / QUANT_FORMATS.q6_k.block,
};

/** Numeric codes shared with the native addon (native/dtype.h). */
export const DTYPE_CODE: Record<DType, number> = { f32: 0, bf16: 1, f16: 2, q4_0: 3, q8_0: 4, q4_k: 5, q5_k: 6, q6_k: 7 };

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function bf16ToF32(h: number): number {
  u32Scratch[0] = h << 16;
  return f32Scratch[0]!;
}

/** Round-to-nearest-even f32 -> bf16 (what torch does), NaN kept quiet. */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Round-to-nearest-even f32 -> f16. */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
