import type { DType } from './dtype.js';
import { bf16ToF32, f16ToF32 } from './dtype.js';

/**
 * A stored tensor: a typed view straight into the (memory-mapped) weight file. f32 data is a
 * Float32Array, bf16/f16 data a Uint16Array of raw bits. Shapes follow the file (row-major);
 * a Linear weight is [out_features, in_features] as in Hugging Face.
 */
export interface Weight {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Uint16Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Element i of a weight widened to a JS number (slow; for reference code and tests). */
export function weightAt(w: Weight, i: number): number {
  const v = w.data[i]!;
  if (w.dtype === 'f32') return v;
  return w.dtype === 'bf16' ? bf16ToF32(v) : f16ToF32(v);
}

/** Copy rows [row, row+count) of a 2-D weight into dst as f32 (embedding lookup, tests). */
export function readRows(w: Weight, row: number, count: number, dst: Float32Array, dstOffset = 0): void {
  const cols = w.shape[w.shape.length - 1]!;
  const start = row * cols;
  const n = count * cols;
  if (w.dtype === 'f32') {
    dst.set((w.data as Float32Array).subarray(start, start + n), dstOffset);
    return;
  }
  for (let i = 0; i < n; i++) dst[dstOffset + i] = weightAt(w, start + i);
}

/** A whole weight as a fresh Float32Array (tests and small tensors only). */
export function toF32(w: Weight): Float32Array {
  const out = new Float32Array(w.data.length);
  readRows({ ...w, shape: [w.data.length] }, 0, 1, out);
  return out;
}

/** Wrap an f32 array as a Weight (tests, derived tensors). */
export function f32Weight(name: string, shape: readonly number[], data: Float32Array): Weight {
  return { name, dtype: 'f32', shape, data };
}
