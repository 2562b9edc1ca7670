import { f16ToF32 } from '../dtype.js';
import type { QuantType } from './formats.js';
import { QUANT_FORMATS } from './formats.js';

/**
 * The reference dequantization of ggml's block formats (see formats.ts): the specification the native
 * kernels are tested against and what the reference backend multiplies with. Plain loops, written from
 * the block layouts in ggml-common.h / ggml-quants.c.
 */

/** Sub-block j's 6-bit scale and min from the 12 packed bytes of a Q4_K / Q5_K super-block. */
export function scaleMinK4(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 0xf) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

function f16At(b: Uint8Array, o: number): number {
  return f16ToF32(b[o]! | (b[o + 1]! << 8));
}

/**
 * Dequantize `count` weights (a multiple of the block size) from `src` starting at byte `at` (a block
 * boundary) into out[outAt ...].
 */
export function dequantize(type: QuantType, src: Uint8Array, at: number, count: number, out: Float32Array, outAt = 0): void {
  const f = QUANT_FORMATS[type];
  const blocks = count / f.block;
  for (let b = 0; b < blocks; b++) {
    const o = at + b * f.bytes;
    const y = outAt + b * f.block;
    switch (type) {
      case 'q8_0': {
        const d = f16At(src, o);
        for (let i = 0; i < 32; i++) out[y + i] = d * ((src[o + 2 + i]! << 24) >> 24);
        break;
      }
      case 'q4_0': {
        const d = f16At(src, o);
        for (let i = 0; i < 16; i++) {
          const q = src[o + 2 + i]!;
          out[y + i] = d * ((q & 0xf) - 8);
          out[y + i + 16] = d * ((q >> 4) - 8);
        }
        break;
      }
      case 'q4_k':
      case 'q5_k': {
        const d = f16At(src, o);
        const dmin = f16At(src, o + 2);
        const five = type === 'q5_k';
        const qh = o + 16; // Q5_K only
        const qs = o + 16 + (five ? 32 : 0);
        for (let c = 0; c < 4; c++) {
          // 64 weights per chunk: sub-block 2c from the low nibbles, 2c + 1 from the high nibbles
          for (let half = 0; half < 2; half++) {
            const [sc, m] = scaleMinK4(src, o + 4, 2 * c + half);
            const scale = d * sc;
            const min = dmin * m;
            for (let l = 0; l < 32; l++) {
              const byte = src[qs + 32 * c + l]!;
              let q = half === 0 ? byte & 0xf : byte >> 4;
              if (five && src[qh + l]! & (1 << (2 * c + half))) q += 16;
              out[y + 64 * c + 32 * half + l] = scale * q - min;
            }
          }
        }
        break;
      }
      case 'q6_k': {
        const ql = o;
        const qh = o + 128;
        const sc = o + 192;
        const d = f16At(src, o + 208);
        for (let n = 0; n < 2; n++) {
          for (let l = 0; l < 32; l++) {
            const lo0 = src[ql + 64 * n + l]!;
            const lo1 = src[ql + 64 * n + l + 32]!;
            const h = src[qh + 32 * n + l]!;
            // weights l, l + 32, l + 64, l + 96 of this half: low nibbles of ql[l], ql[l + 32], then their
            // high nibbles, each with its 2-bit pair of qh[l]; scale index = weight / 16
            for (let p = 0; p < 4; p++) {
              const lo = p & 1 ? lo1 : lo0;
              const q = ((p < 2 ? lo : lo >> 4) & 0xf) | (((h >> (2 * p)) & 3) << 4);
              const s = (src[sc + 8 * n + 2 * p + (l >> 4)]! << 24) >> 24;
              out[y + 128 * n + 32 * p + l] = d * s * (q - 32);
            }
          }
        }
        break;
      }
    }
  }
}
