import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { f16ToF32, f32ToF16 } from '../../src/tensor/dtype.js';
import { dequantize } from '../../src/tensor/quant/dequantize.js';
import type { QuantType } from '../../src/tensor/quant/formats.js';
import { QUANT_FORMATS, QUANT_TYPES } from '../../src/tensor/quant/formats.js';
import { quantize, quantizeRows } from '../../src/tensor/quant/quantize.js';
import { nativeAvailable } from '../../src/tensor/native.js';
import { rng } from '../helpers/random.js';

/**
 * The block formats against their definition: blocks packed here from chosen codes and scales, written
 * from the layouts as ggml documents them (not with moesaic's quantizer), must dequantize to
 * d·sc·q - dmin·m (and the Q4_0 / Q6_K forms). Then the quantizers: every format round-trips within its
 * step, and the K-quant scale search beats the naive min/max scales on the same format.
 */

const SEED = (Date.now() ^ (process.pid << 8)) >>> 0;
const rand = rng(SEED);
const int = (n: number): number => Math.floor(rand() * n);
const f16 = (v: number): number => f16ToF32(f32ToF16(v));

function putF16(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

/** A Q4_K / Q5_K super-block from codes q[256] (0..15 / 0..31), 6-bit sc[8], m[8], d and dmin. */
function packK(five: boolean, q: number[], sc: number[], m: number[], d: number, dmin: number): Uint8Array {
  const b = new Uint8Array(five ? 176 : 144);
  putF16(b, 0, d);
  putF16(b, 2, dmin);
  // bytes 4..15: sc0-3 and m0-3 in the low 6 bits of bytes 0-3 / 4-7, whose top 2 bits carry the high
  // bits of sc4-7 / m4-7; bytes 8-11 hold the low nibbles of sc4-7 (low) and m4-7 (high)
  for (let j = 0; j < 4; j++) {
    b[4 + j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
    b[8 + j] = m[j]! | ((m[j + 4]! >> 4) << 6);
    b[12 + j] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4);
  }
  const qs = five ? 48 : 16;
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const lo = q[64 * c + l]!;
      const hi = q[64 * c + 32 + l]!;
      b[qs + 32 * c + l] = (lo & 15) | ((hi & 15) << 4);
      if (five) b[16 + l]! |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
    }
  }
  return b;
}

/** A Q6_K super-block from codes q[256] (0..63), int8 sc[16] and d. */
function packQ6K(q: number[], sc: number[], d: number): Uint8Array {
  const b = new Uint8Array(210);
  for (let n = 0; n < 2; n++) {
    for (let l = 0; l < 32; l++) {
      const [a, bb, c, e] = [q[128 * n + l]!, q[128 * n + 32 + l]!, q[128 * n + 64 + l]!, q[128 * n + 96 + l]!];
      b[64 * n + l] = (a & 15) | ((c & 15) << 4);
      b[64 * n + 32 + l] = (bb & 15) | ((e & 15) << 4);
      b[128 + 32 * n + l] = (a >> 4) | ((bb >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
  for (let g = 0; g < 16; g++) b[192 + g] = sc[g]! & 0xff;
  putF16(b, 208, d);
  return b;
}

function decode(type: QuantType, block: Uint8Array): Float32Array {
  const out = new Float32Array(QUANT_FORMATS[type].block);
  dequantize(type, block, 0, out.length, out);
  return out;
}

function close(a: number, b: number, what: string): void {
  if (!(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)))) assert.fail(`${what}: ${a} != ${b} (seed ${SEED})`);
}

describe('block layouts dequantize as defined', () => {
  test('Q4_K and Q5_K: w = d·sc_j·q - dmin·m_j with packed 6-bit scales and mins', () => {
    for (const five of [false, true]) {
      const q = Array.from({ length: 256 }, () => int(five ? 32 : 16));
      const sc = Array.from({ length: 8 }, () => int(64));
      const m = Array.from({ length: 8 }, () => int(64));
      const d = f16(0.01 + rand() * 0.02);
      const dmin = f16(0.005 + rand() * 0.01);
      const y = decode(five ? 'q5_k' : 'q4_k', packK(five, q, sc, m, d, dmin));
      for (let i = 0; i < 256; i++) close(y[i]!, d * sc[i >> 5]! * q[i]! - dmin * m[i >> 5]!, `${five ? 'Q5_K' : 'Q4_K'} weight ${i}`);
    }
  });

  test('Q6_K: w = d·sc_g·(q - 32), one int8 scale per 16 weights, low nibbles and high bit pairs split', () => {
    const q = Array.from({ length: 256 }, () => int(64));
    const sc = Array.from({ length: 16 }, () => int(256) - 128);
    const d = f16(0.001 + rand() * 0.01);
    const y = decode('q6_k', packQ6K(q, sc, d));
    for (let i = 0; i < 256; i++) close(y[i]!, d * sc[i >> 4]! * (q[i]! - 32), `Q6_K weight ${i}`);
  });

  test('Q4_0: w = d·(q - 8), weights 0-15 in the low nibbles and 16-31 in the high', () => {
    const b = new Uint8Array(18);
    putF16(b, 0, 0.25);
    const q = Array.from({ length: 32 }, () => int(16));
    for (let j = 0; j < 16; j++) b[2 + j] = q[j]! | (q[j + 16]! << 4);
    const y = decode('q4_0', b);
    for (let i = 0; i < 32; i++) assert.equal(y[i], 0.25 * (q[i]! - 8));
  });
});

/** Gaussian-ish weights with an occasional outlier, as trained matrices have. */
function weights(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = (rand() + rand() + rand() + rand() - 2) * 0.05;
    x[i] = rand() < 0.01 ? g * 8 : g;
  }
  return x;
}

function sqErr(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

describe('quantizers', () => {
  // relative RMS error each format must reach on such weights: about 1.25x what it measures (each
  // extra bit halves it; without the 1% outliers it is 0.005, 0.017, 0.035, 0.069, 0.079)
  const RMS: Record<QuantType, number> = { q8_0: 0.01, q6_k: 0.035, q5_k: 0.055, q4_k: 0.11, q4_0: 0.16 };
  for (const type of QUANT_TYPES) {
    test(`${type}: round trip within its step, every value within the block's range`, () => {
      const n = 256 * 16;
      const x = weights(n);
      const f = QUANT_FORMATS[type];
      const q = new Uint8Array((n / f.block) * f.bytes);
      quantize(type, x, 0, n, q);
      const y = new Float32Array(n);
      dequantize(type, q, 0, n, y);
      let ss = 0;
      for (let i = 0; i < n; i++) ss += x[i]! ** 2;
      const rel = Math.sqrt(sqErr(x, y) / ss);
      assert.ok(rel <= RMS[type], `${type}: relative RMS error ${rel.toFixed(4)} > ${RMS[type]} (seed ${SEED})`);
      // no value may land far outside its block's range (a mis-packed scale would)
      for (let b = 0; b < n / f.block; b++) {
        let amax = 0;
        for (let i = 0; i < f.block; i++) amax = Math.max(amax, Math.abs(x[b * f.block + i]!));
        for (let i = 0; i < f.block; i++) assert.ok(Math.abs(y[b * f.block + i]!) <= amax * 1.5 + 1e-6, `${type} block ${b} value ${i}`);
      }
    });
  }

  test('the K-quant scale search has less error than naive min/max scales in the same format', () => {
    const blocks = 64;
    const x = weights(256 * blocks);
    const ours = new Uint8Array(144 * blocks);
    quantize('q4_k', x, 0, x.length, ours);
    const yOurs = new Float32Array(x.length);
    dequantize('q4_k', ours, 0, x.length, yOurs);
    // naive: per 32 weights scale = (max - min) / 15 and min = -min(x, 0), 6-bit sub-scales under max/63
    const yNaive = new Float32Array(x.length);
    for (let b = 0; b < blocks; b++) {
      const s: number[] = [];
      const mn: number[] = [];
      for (let j = 0; j < 8; j++) {
        const seg = x.subarray(256 * b + 32 * j, 256 * b + 32 * j + 32);
        const lo = Math.min(0, ...seg);
        s.push((Math.max(...seg) - lo) / 15);
        mn.push(-lo);
      }
      const d = Math.max(...s) / 63;
      const dmin = Math.max(...mn) / 63;
      const sc = s.map((v) => Math.min(63, Math.round(v / d)));
      const m = mn.map((v) => Math.min(63, Math.round(v / dmin)));
      const q: number[] = [];
      for (let i = 0; i < 256; i++) {
        const j = i >> 5;
        const step = f16(d) * sc[j]!;
        q.push(step ? Math.max(0, Math.min(15, Math.round((x[256 * b + i]! + f16(dmin) * m[j]!) / step))) : 0);
      }
      yNaive.set(decode('q4_k', packK(false, q, sc, m, d, dmin)), 256 * b);
    }
    const eOurs = sqErr(x, yOurs);
    const eNaive = sqErr(x, yNaive);
    assert.ok(eOurs < 0.9 * eNaive, `search error ${eOurs.toExponential(3)} vs naive ${eNaive.toExponential(3)} (seed ${SEED})`);
  });

  test('the native quantizers agree with these (same algorithms in f32)', { skip: nativeAvailable() ? false : 'native addon not built' }, () => {
    const rows = 16;
    const k = 512;
    const x = weights(rows * k);
    for (const type of QUANT_TYPES) {
      const f = QUANT_FORMATS[type];
      const ref = new Uint8Array(((rows * k) / f.block) * f.bytes);
      const fast = new Uint8Array(ref.length + 1).fill(0xa5);
      quantize(type, x, 0, rows * k, ref);
      quantizeRows(type, x, rows, k, fast);
      assert.equal(fast[ref.length], 0xa5, `${type}: wrote past the end`);
      let same = 0;
      for (let b = 0; b < ref.length / f.bytes; b++) {
        if (ref.subarray(b * f.bytes, (b + 1) * f.bytes).every((v, i) => v === fast[b * f.bytes + i])) same++;
      }
      // f32 against f64 arithmetic flips a near-tied choice now and then (measured 88-100% equal blocks)
      assert.ok(same >= 0.75 * (ref.length / f.bytes), `${type}: only ${same} of ${ref.length / f.bytes} blocks equal (seed ${SEED})`);
      const a = new Float32Array(rows * k);
      const b = new Float32Array(rows * k);
      dequantize(type, ref, 0, rows * k, a);
      dequantize(type, fast.subarray(0, ref.length), 0, rows * k, b);
      const ratio = sqErr(x, b) / sqErr(x, a);
      assert.ok(ratio > 0.98 && ratio < 1.02, `${type}: native error ${ratio.toFixed(4)}x the reference quantizer's (seed ${SEED})`);
    }
  });
});
