import { f16ToF32, f32ToF16 } from '../../tensor/dtype.js';

/**
 * ggml's Q8_0: blocks of 32 values, each block an f16 scale d followed by 32 signed bytes q, with
 * x ≈ q * d and d = max|x| / 127. 34 bytes per 32 weights (8.5 bits per weight).
 */
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 34;

/**
 * Quantise `x` (length a multiple of 32) into `out` (x.length / 32 * 34 bytes). The rounding follows
 * ggml's reference quantiser: scale from the f32 maximum, values rounded half away from zero after
 * multiplying by the f32 inverse scale.
 */
export function quantizeQ8_0(x: Float32Array, out: Uint8Array): void {
  const blocks = x.length / Q8_0_BLOCK;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const f = new Float32Array(1);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(x[base + i]!));
    f[0] = amax / 127;
    const d = f[0]!;
    f[0] = d !== 0 ? 1 / d : 0;
    const id = f[0]!;
    const o = b * Q8_0_BLOCK_BYTES;
    dv.setUint16(o, f32ToF16(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      f[0] = x[base + i]! * id;
      const v = f[0]!;
      const q = v < 0 ? -Math.round(-v) : Math.round(v);
      dv.setInt8(o + 2 + i, q);
    }
  }
}

/** Dequantise Q8_0 bytes into f32 values (`out.length` values). */
export function dequantizeQ8_0ToF32(src: Uint8Array, out: Float32Array): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const blocks = out.length / Q8_0_BLOCK;
  for (let b = 0; b < blocks; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = f16ToF32(dv.getUint16(o, true));
    const base = b * Q8_0_BLOCK;
    for (let i = 0; i < Q8_0_BLOCK; i++) out[base + i] = dv.getInt8(o + 2 + i) * d;
  }
}

/**
 * Dequantise Q8_0 bytes into bf16 bits. moesaic keeps a Q8_0 tensor in bf16 after loading: half the
 * memory of f32 (2 bytes per weight against the file's 1.06), and bf16 is what the fast kernels stream.
 * The extra rounding (relative 2^-9 per weight) is small beside Q8_0's own step of max|x|/127 per block.
 */
export function dequantizeQ8_0ToBf16(src: Uint8Array, out: Uint16Array): void {
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const q = new Int8Array(src.buffer, src.byteOffset, src.byteLength);
  const f = new Float32Array(Q8_0_BLOCK);
  const bits = new Uint32Array(f.buffer);
  const blocks = out.length / Q8_0_BLOCK;
  for (let b = 0; b < blocks; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = f16ToF32(dv.getUint16(o, true));
    for (let i = 0; i < Q8_0_BLOCK; i++) f[i] = q[o + 2 + i]! * d;
    const base = b * Q8_0_BLOCK;
    // round to nearest even (values are finite: |q·d| <= 127 · 65504); same rule as f32ToBf16
    for (let i = 0; i < Q8_0_BLOCK; i++) {
      const u = bits[i]!;
      out[base + i] = ((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
    }
  }
}
