import type { DType } from './dtype.js';
import { bf16ToF32, f16ToF32 } from './dtype.js';
import { dequantize } from './quant/dequantize.js';
import type { QuantType } from './quant/formats.js';
import { isQuantType, QUANT_FORMATS, quantRowBytes } from './quant/formats.js';

/**
 * A stored tensor: a typed view straight into the (memory-mapped) weight file. f32 data is a
 * Float32Array, bf16/f16 data a Uint16Array of raw bits, a quantized type's data a Uint8Array of its
 * blocks (rows back to back, each row K / block blocks). Shapes follow the file (row-major); a Linear
 * weight is [out_features, in_features] as in Hugging Face. A quantized weight is thus fully described
 * by (byteOffset, byteLength, dtype, shape), which is what an expert cache copies.
 */
export interface Weight {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Uint16Array | Uint8Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes of a weight's data (its blocks for a quantized type). */
export function weightBytes(w: Weight): number {
  return w.data.byteLength;
}

/** Element i of a weight widened to a JS number (slow; for reference code and tests). */
export function weightAt(w: Weight, i: number): number {
  if (isQuantType(w.dtype)) {
    const f = QUANT_FORMATS[w.dtype];
    const b = Math.floor(i / f.block);
    const out = new Float32Array(f.block);
    dequantize(w.dtype, w.data as Uint8Array, b * f.bytes, f.block, out);
    return out[i - b * f.block]!;
  }
  const v = w.data[i]!;
  if (w.dtype === 'f32') return v;
  return w.dtype === 'bf16' ? bf16ToF32(v) : f16ToF32(v);
}

/** Copy rows [row, row+count) of a 2-D weight into dst as f32 (embedding lookup, tests). */
export function readRows(w: Weight, row: number, count: number, dst: Float32Array, dstOffset = 0): void {
  const cols = w.shape[w.shape.length - 1]!;
  const start = row * cols;
  const n = count * cols;
  if (isQuantType(w.dtype)) {
    dequantize(w.dtype, w.data as Uint8Array, row * quantRowBytes(w.dtype, cols), n, dst, dstOffset);
    return;
  }
  if (w.dtype === 'f32') {
    dst.set((w.data as Float32Array).subarray(start, start + n), dstOffset);
    return;
  }
  // bf16 / f16 widened in one loop (the embedding lookup of every token), not weightAt per element
  const bits = w.data as Uint16Array;
  const widen = w.dtype === 'bf16' ? bf16ToF32 : f16ToF32;
  for (let i = 0; i < n; i++) dst[dstOffset + i] = widen(bits[start + i]!);
}

/** A whole weight as a fresh Float32Array (tests and small tensors only). */
export function toF32(w: Weight): Float32Array {
  const n = numel(w.shape);
  const out = new Float32Array(n);
  const cols = w.shape[w.shape.length - 1] ?? 1;
  readRows(w, 0, n / cols, out);
  return out;
}

/** Wrap an f32 array as a Weight (tests, derived tensors). */
export function f32Weight(name: string, shape: readonly number[], data: Float32Array): Weight {
  return { name, dtype: 'f32', shape, data };
}

/** Wrap quantized blocks as a Weight of shape [rows, cols] (cols a multiple of the block size). */
export function quantWeight(name: string, dtype: QuantType, shape: readonly [number, number], data: Uint8Array): Weight {
  return { name, dtype, shape, data };
}
