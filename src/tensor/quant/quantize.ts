import { DTYPE_CODE, f16ToF32, f32ToF16 } from '../dtype.js';
import { nativeAddon, nativeAvailable } from '../native.js';
import { scaleMinK4 } from './dequantize.js';
import type { QuantType } from './formats.js';
import { QUANT_FORMATS } from './formats.js';
import { asymmetricScale, nearestInt, symmetricScale } from './search.js';

/**
 * Quantizers writing ggml's block layouts (formats.ts). Like ggml's reference quantizers they search
 * each (sub-)block's scale for the least weighted error (search.ts) rather than taking max|x| / qmax,
 * then requantize against the scales as stored (6-bit / int8 sub-scales, f16 super-scales), so codes
 * match what the dequantizer will see. Q8_0 keeps ggml's plain max|x| / 127 (its error is already tiny).
 */

/** f32 -> f16 -> f32: the value a stored f16 scale has when read back. */
function viaF16(v: number): number {
  return f16ToF32(f32ToF16(v));
}

function putF16(out: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  out[o] = h & 0xff;
  out[o + 1] = h >> 8;
}

/**
 * Quantize `count` weights (a multiple of the block size) of x starting at `at` into out from byte `outAt`
 * (count / block · bytes bytes).
 */
export function quantize(type: QuantType, x: Float32Array, at: number, count: number, out: Uint8Array, outAt = 0): void {
  const f = QUANT_FORMATS[type];
  const L = new Uint8Array(256);
  for (let b = 0; b < count / f.block; b++) {
    const xa = at + b * f.block;
    const o = outAt + b * f.bytes;
    switch (type) {
      case 'q8_0':
        q8_0Block(x, xa, out, o);
        break;
      case 'q4_0': {
        const d = symmetricScale(x, xa, 32, 8, L);
        putF16(out, o, d);
        for (let j = 0; j < 16; j++) out[o + 2 + j] = L[j]! | (L[j + 16]! << 4);
        break;
      }
      case 'q4_k':
      case 'q5_k':
        kBlock(type === 'q5_k', x, xa, out, o, L);
        break;
      case 'q6_k':
        q6kBlock(x, xa, out, o, L);
        break;
    }
  }
}

function q8_0Block(x: Float32Array, at: number, out: Uint8Array, o: number): void {
  let amax = 0;
  for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[at + i]!));
  const d = Math.fround(amax / 127);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  putF16(out, o, d);
  for (let i = 0; i < 32; i++) {
    const v = Math.fround(x[at + i]! * id);
    out[o + 2 + i] = (v < 0 ? -Math.round(-v) : Math.round(v)) & 0xff;
  }
}

/** Q4_K (nmax 15) or Q5_K (nmax 31): eight 32-weight sub-blocks with a scale and a min each. */
function kBlock(five: boolean, x: Float32Array, at: number, out: Uint8Array, o: number, L: Uint8Array): void {
  const nmax = five ? 31 : 15;
  const scales = new Float64Array(8);
  const mins = new Float64Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const [s, m] = five
      ? asymmetricScale(x, at + 32 * j, 32, nmax, L.subarray(32 * j), -0.5, 0.1, 15)
      : asymmetricScale(x, at + 32 * j, 32, nmax, L.subarray(32 * j), -1, 0.1, 20);
    scales[j] = s;
    mins[j] = m;
    maxScale = Math.max(maxScale, s);
    maxMin = Math.max(maxMin, m);
  }
  const invScale = maxScale > 0 ? 63 / maxScale : 0;
  const invMin = maxMin > 0 ? 63 / maxMin : 0;
  const sc = o + 4;
  out.fill(0, sc, sc + 12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(invScale * scales[j]!));
    const lm = Math.min(63, nearestInt(invMin * mins[j]!));
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] |= (ls >> 4) << 6;
      out[sc + j] |= (lm >> 4) << 6;
    }
  }
  putF16(out, o, maxScale / 63);
  putF16(out, o + 2, maxMin / 63);
  const d = viaF16(maxScale / 63);
  const dmin = viaF16(maxMin / 63);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(out, sc, j);
    const dj = d * s;
    if (!dj) continue;
    const mj = dmin * m;
    for (let i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt((x[at + 32 * j + i]! + mj) / dj)));
  }
  const qs = o + 16 + (five ? 32 : 0);
  if (five) out.fill(0, o + 16, o + 48);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      let lo = L[64 * c + l]!;
      let hi = L[64 * c + l + 32]!;
      if (five) {
        if (lo > 15) {
          lo -= 16;
          out[o + 16 + l] |= 1 << (2 * c);
        }
        if (hi > 15) {
          hi -= 16;
          out[o + 16 + l] |= 2 << (2 * c);
        }
      }
      out[qs + 32 * c + l] = lo | (hi << 4);
    }
  }
}

/** Q6_K: sixteen 16-weight sub-blocks with int8 scales under one f16 super-scale. */
function q6kBlock(x: Float32Array, at: number, out: Uint8Array, o: number, L: Uint8Array): void {
  const scales = new Float64Array(16);
  let maxScale = 0;
  let maxAbs = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = symmetricScale(x, at + 16 * ib, 16, 32, L.subarray(16 * ib));
    scales[ib] = s;
    if (Math.abs(s) > maxAbs) {
      maxAbs = Math.abs(s);
      maxScale = s;
    }
  }
  out.fill(0, o, o + 210);
  if (maxAbs < 1e-15) return;
  const iscale = -128 / maxScale;
  putF16(out, o + 208, 1 / iscale);
  const d = viaF16(1 / iscale);
  for (let ib = 0; ib < 16; ib++) {
    const s = Math.min(127, nearestInt(iscale * scales[ib]!));
    out[o + 192 + ib] = s & 0xff;
    const dj = d * s;
    if (!dj) continue;
    for (let i = 0; i < 16; i++) L[16 * ib + i] = Math.max(-32, Math.min(31, nearestInt(x[at + 16 * ib + i]! / dj))) + 32;
  }
  for (let n = 0; n < 2; n++) {
    for (let l = 0; l < 32; l++) {
      const q = [L[128 * n + l]!, L[128 * n + l + 32]!, L[128 * n + l + 64]!, L[128 * n + l + 96]!];
      out[o + 64 * n + l] = (q[0]! & 0xf) | ((q[2]! & 0xf) << 4);
      out[o + 64 * n + l + 32] = (q[1]! & 0xf) | ((q[3]! & 0xf) << 4);
      out[o + 128 + 32 * n + l] = (q[0]! >> 4) | ((q[1]! >> 4) << 2) | ((q[2]! >> 4) << 4) | ((q[3]! >> 4) << 6);
    }
  }
}

/**
 * Quantize rows x[rows, k] into out with the native quantizers (the same algorithms in f32, on the
 * thread pool: seconds instead of minutes for a model), or with `quantize` where the addon is not built.
 */
export function quantizeRows(type: QuantType, x: Float32Array, rows: number, k: number, out: Uint8Array): void {
  if (nativeAvailable()) nativeAddon().quantizeRows(x, out, DTYPE_CODE[type], rows, k);
  else quantize(type, x, 0, rows * k, out);
}
