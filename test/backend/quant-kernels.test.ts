import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { cpuBackend, quantIsa, setIsa, setThreads, supportedIsas } from '../../src/tensor/cpu-backend.js';
import { f32ToF16 } from '../../src/tensor/dtype.js';
import type { QuantType } from '../../src/tensor/quant/formats.js';
import { QUANT_FORMATS, QUANT_TYPES, quantRowBytes } from '../../src/tensor/quant/formats.js';
import type { Weight } from '../../src/tensor/weight.js';
import { quantWeight, toF32 } from '../../src/tensor/weight.js';
import { rng } from '../helpers/random.js';

/**
 * The quantized products of the `cpu` backend (native/quant-impl.h) against the reference backend
 * (dequantize, then float64 dot products) on random blocks of every type: random bytes for codes, packed
 * 6-bit scales/mins and high bits, random finite f16 super-scales. For every instruction set and 1-3
 * threads, at awkward shapes (one row, one column, odd block counts), with sentinels around the output.
 *
 * Error bound: the kernels round each activation to int8 in blocks of 32 (scale dx = max|x| / 127), so
 * each x_i moves by at most dx/2: |Σ w_i (x_i - x̂_i)| <= Σ |w_i| · dx_b(i) / 2. On top of that, f32
 * scaling and summation: 1e-5 of Σ |x_i| (|w_i| + 2 max|w|) (the offsets of asymmetric formats cancel).
 */

const SEED = (Date.now() ^ (process.pid << 8)) >>> 0;
const rand = rng(SEED);
const SENTINEL = 1234.5;
const PAD = 5;

/** Where each format keeps its f16 (super-)scales, so random bytes can be given sane ones. */
const F16_FIELDS: Record<QuantType, number[]> = { q4_0: [0], q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] };

function randomQuant(type: QuantType, n: number, k: number): Weight {
  const f = QUANT_FORMATS[type];
  const bytes = n * quantRowBytes(type, k);
  // at an odd byte offset inside a larger buffer, like a tensor inside a mapped file
  const data = new Uint8Array(bytes + 3).subarray(3);
  for (let i = 0; i < bytes; i++) data[i] = Math.floor(rand() * 256);
  for (let b = 0; b < bytes / f.bytes; b++) {
    for (const at of F16_FIELDS[type]) {
      const h = f32ToF16((rand() < 0.5 ? -1 : 1) * (0.0005 + 0.01 * rand()));
      data[b * f.bytes + at] = h & 0xff;
      data[b * f.bytes + at + 1] = h >> 8;
    }
  }
  return quantWeight(`w.${type}`, type, [n, k], data);
}

function randomX(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() - 0.5) * (rand() < 0.1 ? 8 : 2);
  return x;
}

/** Per-output bound on |kernel - reference| (see the file comment). */
function bounds(x: Float32Array, w: Float32Array, rows: number, n: number, k: number): Float64Array {
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const dx = new Float64Array(k);
    for (let b = 0; b < k / 32; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[r * k + 32 * b + i]!));
      dx.fill(amax / 127, 32 * b, 32 * b + 32);
    }
    for (let j = 0; j < n; j++) {
      let maxW = 0;
      for (let i = 0; i < k; i++) maxW = Math.max(maxW, Math.abs(w[j * k + i]!));
      let e = 0;
      for (let i = 0; i < k; i++) {
        const wi = Math.abs(w[j * k + i]!);
        const xi = Math.abs(x[r * k + i]!);
        e += wi * (dx[i]! / 2) * 1.0001 + 1e-5 * xi * (wi + 2 * maxW);
      }
      out[r * n + j] = e + 1e-6;
    }
  }
  return out;
}

function padded(n: number): { buf: Float32Array; view: Float32Array } {
  const buf = new Float32Array(n + 2 * PAD).fill(SENTINEL);
  const view = buf.subarray(PAD, PAD + n);
  view.fill(Number.NaN);
  return { buf, view };
}

function checkOutput(buf: Float32Array, view: Float32Array, want: Float32Array, bound: Float64Array, what: string): void {
  for (let i = 0; i < buf.length; i++) {
    if ((i < PAD || i >= PAD + view.length) && buf[i] !== SENTINEL) assert.fail(`${what}: wrote outside the output at ${i - PAD} (seed ${SEED})`);
  }
  for (let i = 0; i < view.length; i++) {
    const err = Math.abs(view[i]! - want[i]!);
    if (!(err <= bound[i]!)) assert.fail(`${what}: output ${i} is ${view[i]}, reference ${want[i]}, error ${err} > bound ${bound[i]} (seed ${SEED})`);
  }
}

const SHAPES: Record<'small' | 'super', [rows: number, n: number, k: number][]> = {
  small: [[1, 1, 32], [1, 67, 96], [2, 3, 544], [5, 17, 160], [33, 9, 64]],
  super: [[1, 1, 256], [1, 37, 768], [3, 5, 1280], [7, 13, 512], [20, 3, 256]],
};

test('quantized matmul matches the reference for every type, ISA and thread count', () => {
  const seen = new Set<string>();
  for (const type of QUANT_TYPES) {
    for (const [rows, n, k] of SHAPES[QUANT_FORMATS[type].block === 32 ? 'small' : 'super']) {
      const w = randomQuant(type, n, k);
      const x = randomX(rows * k);
      const xCopy = x.slice();
      const want = new Float32Array(rows * n);
      refBackend.matmul(want, x, w, rows);
      const bound = bounds(x, toF32(w), rows, n, k);
      for (const isa of supportedIsas()) {
        setIsa(isa);
        seen.add(quantIsa());
        for (const t of [1, 2, 3]) {
          setThreads(t);
          const { buf, view } = padded(rows * n);
          cpuBackend.matmul(view, x, w, rows);
          checkOutput(buf, view, want, bound, `${type} matmul ${rows}x${n}x${k} [${quantIsa()}, ${t} threads]`);
          assert.deepEqual(x, xCopy, 'x must not change');
        }
      }
    }
  }
  setThreads(2);
  // AVX-512 machines without VNNI run the AVX2 integer path
  assert.ok(seen.has('portable'), [...seen].join(', '));
});

test('quantized fused SwiGLU matches silu(x·Wgᵀ)·(x·Wuᵀ) of the reference', () => {
  for (const type of QUANT_TYPES) {
    const k = QUANT_FORMATS[type].block * 3;
    for (const [rows, f] of [[1, 19], [6, 4]] as const) {
      const gate = randomQuant(type, f, k);
      const up = randomQuant(type, f, k);
      const x = randomX(rows * k);
      const g = new Float32Array(rows * f);
      const u = new Float32Array(rows * f);
      refBackend.matmul(g, x, gate, rows);
      refBackend.matmul(u, x, up, rows);
      const bg = bounds(x, toF32(gate), rows, f, k);
      const bu = bounds(x, toF32(up), rows, f, k);
      const want = new Float32Array(rows * f);
      const bound = new Float64Array(rows * f);
      for (let i = 0; i < rows * f; i++) {
        const s = (v: number): number => v / (1 + Math.exp(-v));
        want[i] = s(g[i]!) * u[i]!;
        // |d silu/dg| <= 1.1: propagate both products' bounds
        bound[i] = 1.1 * bg[i]! * (Math.abs(u[i]!) + bu[i]!) + Math.abs(s(g[i]!)) * bu[i]! + 1e-5 * Math.abs(want[i]!);
      }
      for (const isa of supportedIsas()) {
        setIsa(isa);
        for (const t of [1, 2]) {
          setThreads(t);
          const { buf, view } = padded(rows * f);
          cpuBackend.swiGlu(view, x, gate, up, rows);
          checkOutput(buf, view, want, bound, `${type} swiGlu ${rows}x${f}x${k} [${quantIsa()}, ${t} threads]`);
        }
      }
    }
  }
  setThreads(2);
});

test('quantized matmul adds a bias and refuses bad shapes with a clear error', () => {
  const w = randomQuant('q4_k', 5, 256);
  const x = randomX(2 * 256);
  const bias = { name: 'b', dtype: 'f32' as const, shape: [5], data: new Float32Array([1, -2, 3, -4, 5]) };
  const plain = new Float32Array(10);
  const biased = new Float32Array(10);
  cpuBackend.matmul(plain, x, w, 2);
  cpuBackend.matmul(biased, x, w, 2, bias);
  for (let i = 0; i < 10; i++) assert.ok(Math.abs(biased[i]! - plain[i]! - bias.data[i % 5]!) < 1e-4);
  const odd = quantWeight('odd.weight', 'q8_0', [2, 48], new Uint8Array(2 * 51));
  assert.throws(() => cpuBackend.matmul(new Float32Array(2), new Float32Array(48), odd, 1), /odd\.weight.*multiple of its block of 32/);
  const short = quantWeight('short.weight', 'q6_k', [2, 256], new Uint8Array(300));
  assert.throws(() => cpuBackend.matmul(new Float32Array(2), new Float32Array(256), short, 1), { code: 'E_BAD_INPUT', message: /short\.weight has 300 bytes, needs 420/ });
});
