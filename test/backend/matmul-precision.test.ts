import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { bf16MatmulKernel, cpuBackend, cpuBackendFor, setIsa, setThreads, supportedIsas } from '../../src/tensor/cpu-backend.js';
import { nativeAddon } from '../../src/tensor/native.js';
import { bf16ActivationsBackend, roundToBf16 } from '../../src/tensor/matmul-precision.js';
import { getBackend } from '../../src/tensor/backends.js';
import type { DType } from '../../src/tensor/dtype.js';
import { f32ToBf16, f32ToF16 } from '../../src/tensor/dtype.js';
import type { Weight } from '../../src/tensor/weight.js';
import { rng } from '../helpers/random.js';

/**
 * The bf16 matmul precision (`--matmul-precision bf16`) of the cpu backend on fresh random inputs, for
 * every instruction set this CPU runs (the AVX-512 table runs vdpbf16ps where the CPU has AVX-512 BF16;
 * the others round the activations and run the f32 kernels) and for 1, 2 and 3 threads:
 * - against the reference with bf16-rounded activations (`bf16ActivationsBackend(refBackend)`): the
 *   products of two bf16 values are exact in f32, so only f32 accumulation differs (the exact mode's
 *   bound, 4·eps32·sqrt(k+1)·Σ|x·w|);
 * - against the exact f32 reference: rounding each activation to bf16 moves it by at most 2⁻⁸ of its
 *   size, so |Δy| <= 2⁻⁸·Σ|x·w| plus the accumulation term (docs/kernels.md);
 * - bit for bit: 1 vs 2 vs 3 threads, a row alone vs the same row in a batch.
 */

const SEED = (Date.now() ^ (process.pid << 8)) >>> 0;
const rand = rng(SEED);
const EPS32 = 2 ** -23;
const BF16_ROUNDING = 2 ** -8;
const SENTINEL = 4321.5;
const bf16Cpu = cpuBackendFor('bf16');
const bf16Ref = bf16ActivationsBackend(refBackend);

function randomF32(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * rand() - 1);
}

function randomWeight(dtype: DType, shape: number[]): Weight {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'f32') return { name: 'w', dtype, shape, data: randomF32(n) };
  // at an odd element offset, like a tensor inside an mmapped file
  const data = new Uint16Array(n + 3).subarray(1, 1 + n);
  for (let i = 0; i < n; i++) data[i] = dtype === 'bf16' ? f32ToBf16(2 * rand() - 1) : f32ToF16(2 * rand() - 1);
  return { name: 'w', dtype, shape, data };
}

/** Σ|x·w| (+ |bias|) per output: the scale of every error term below. */
function magnitude(x: Float32Array, w: Weight, rows: number, bias?: Weight): Float64Array {
  const abs = (v: Weight): Weight => ({ ...v, data: v.dtype === 'f32' ? (v.data as Float32Array).map(Math.abs) : (v.data as Uint16Array).map((h) => h & 0x7fff) });
  const mag = new Float32Array(rows * w.shape[0]!);
  refBackend.matmul(mag, x.map(Math.abs), abs(w), rows, bias && abs(bias));
  return Float64Array.from(mag);
}

function assertClose(got: Float32Array, want: Float32Array, mag: Float64Array, tol: number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const bound = tol * mag[i]! + 1e-30;
    if (!(Math.abs(got[i]! - want[i]!) <= bound)) assert.fail(`${what}: element ${i} = ${got[i]}, reference ${want[i]}, |diff| ${Math.abs(got[i]! - want[i]!)} > ${bound} (seed ${SEED})`);
  }
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

/** Runs `run` for every ISA and 1/2/3 threads; the outputs of one ISA must agree bit for bit. */
function everyIsaAndThreads(run: (what: string) => Float32Array): void {
  for (const isa of supportedIsas()) {
    setIsa(isa);
    let first: Float32Array | undefined;
    for (const t of [1, 2, 3]) {
      setThreads(t);
      const what = `[${isa}: ${bf16MatmulKernel()}, ${t} threads]`;
      const out = run(what);
      if (!first) first = out.slice();
      else if (!sameBits(out, first)) assert.fail(`${what}: differs from 1 thread (seed ${SEED})`);
    }
  }
  setThreads(2);
}

test('bf16 matmul matches the reference with bf16-rounded activations, and exact f32 within 2^-8 of sum |x.w|', () => {
  // k around the 32-activation step and the 8192 packing limit; odd rows and columns; big enough
  // shapes that the pool splits by columns (1 x 1000 x 300) and by rows (64 x 8 x 600)
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 7, 31], [2, 5, 32], [3, 13, 33], [5, 4, 100], [4, 9, 64], [9, 17, 257], [1, 1000, 300], [64, 8, 600], [6, 5, 8193]];
  for (const [rows, n, k] of shapes) {
    for (const withBias of [false, true]) {
      const w = randomWeight('bf16', [n, k]);
      const bias = withBias ? randomWeight('bf16', [n]) : undefined;
      const x = randomF32(rows * k);
      const xCopy = x.slice();
      const rounded = new Float32Array(rows * n);
      bf16Ref.matmul(rounded, x, w, rows, bias);
      const exact = new Float32Array(rows * n);
      refBackend.matmul(exact, x, w, rows, bias);
      const mag = magnitude(x, w, rows, bias);
      const accumulation = 4 * EPS32 * Math.sqrt(k + 1);
      everyIsaAndThreads((what) => {
        const label = `matmul bf16 rows=${rows} n=${n} k=${k} bias=${withBias} ${what}`;
        const buf = new Float32Array(rows * n + 2).fill(SENTINEL);
        const y = buf.subarray(1, 1 + rows * n).fill(Number.NaN);
        bf16Cpu.matmul(y, x, w, rows, bias);
        assert.ok(buf[0] === SENTINEL && buf[rows * n + 1] === SENTINEL, `${label}: wrote outside y`);
        assert.ok(sameBits(x, xCopy), `${label}: x was modified`);
        assertClose(y, rounded, mag, accumulation, `${label} vs rounded reference`);
        assertClose(y, exact, mag, BF16_ROUNDING + accumulation, `${label} vs exact reference`);
        return y;
      });
    }
  }
});

test('the bf16 mode really rounds: it differs from the exact mode, and the fallback equals the exact kernels on rounded rows', () => {
  const [rows, n, k] = [3, 40, 200];
  const w = randomWeight('bf16', [n, k]);
  const x = randomF32(rows * k);
  for (const isa of supportedIsas()) {
    setIsa(isa);
    const y = new Float32Array(rows * n);
    const exact = new Float32Array(rows * n);
    bf16Cpu.matmul(y, x, w, rows);
    cpuBackend.matmul(exact, x, w, rows);
    assert.ok(!sameBits(y, exact), `[${isa}] bf16 mode gave the exact mode's bits (seed ${SEED})`);
    if (bf16MatmulKernel() === 'rounded-f32') {
      const onRounded = new Float32Array(rows * n);
      cpuBackend.matmul(onRounded, roundToBf16(x, rows * k), w, rows);
      assert.ok(sameBits(y, onRounded), `[${isa}] fallback differs from the f32 kernels on rounded activations (seed ${SEED})`);
    }
  }
});

test('bf16 mode: a row computed alone equals the same row inside a batch, bit for bit', () => {
  for (const [rows, n, k] of [[7, 37, 1024 + 19], [5, 9, 64], [6, 11, 33], [5, 6, 8200]] as [number, number, number][]) {
    const w = randomWeight('bf16', [n, k]);
    const x = randomF32(rows * k);
    everyIsaAndThreads((what) => {
      const batch = new Float32Array(rows * n);
      bf16Cpu.matmul(batch, x, w, rows);
      const one = new Float32Array(n);
      for (let r = 0; r < rows; r++) {
        bf16Cpu.matmul(one, x.subarray(r * k, (r + 1) * k), w, 1);
        if (!sameBits(one, batch.subarray(r * n, (r + 1) * n))) assert.fail(`${rows}x${n}x${k} ${what}: row ${r} alone differs from row ${r} of the batch (seed ${SEED})`);
      }
      return batch;
    });
  }
});

test('bf16 mode leaves f32 and f16 weights exact, bit for bit', () => {
  for (const dtype of ['f32', 'f16'] as DType[]) {
    const [rows, n, k] = [5, 21, 70];
    const w = randomWeight(dtype, [n, k]);
    const up = randomWeight(dtype, [n, k]);
    const x = randomF32(rows * k);
    for (const isa of supportedIsas()) {
      setIsa(isa);
      const [a, b] = [new Float32Array(rows * n), new Float32Array(rows * n)];
      bf16Cpu.matmul(a, x, w, rows);
      cpuBackend.matmul(b, x, w, rows);
      assert.ok(sameBits(a, b), `[${isa}] ${dtype} matmul changed in bf16 mode`);
      bf16Cpu.swiGlu(a, x, w, up, rows);
      cpuBackend.swiGlu(b, x, w, up, rows);
      assert.ok(sameBits(a, b), `[${isa}] ${dtype} swiGlu changed in bf16 mode`);
    }
  }
});

test('bf16 swiGlu matches the reference with rounded activations and two bf16 matmuls', () => {
  for (const [rows, f, k] of [[1, 129, 33], [3, 15, 64], [5, 600, 7], [17, 1100, 65]] as const) {
    const gate = randomWeight('bf16', [f, k]);
    const up = randomWeight('bf16', [f, k]);
    const x = randomF32(rows * k);
    const want = new Float32Array(rows * f);
    bf16Ref.swiGlu(want, x, gate, up, rows);
    // as in kernels.test.ts: the projections' errors (scale Σ|x||w|) through silu(g)·u
    const xr = roundToBf16(x, rows * k);
    const [g, u] = [new Float32Array(rows * f), new Float32Array(rows * f)];
    refBackend.matmul(g, xr, gate, rows);
    refBackend.matmul(u, xr, up, rows);
    const [mg, mu] = [magnitude(xr, gate, rows), magnitude(xr, up, rows)];
    const mag = Float64Array.from(want, (v, i) => 1.1 * Math.abs(u[i]!) * mg[i]! + Math.abs(g[i]! / (1 + Math.exp(-g[i]!))) * mu[i]! + Math.abs(v));
    everyIsaAndThreads((what) => {
      const out = new Float32Array(rows * f);
      bf16Cpu.swiGlu(out, x, gate, up, rows);
      assertClose(out, want, mag, 8 * EPS32, `swiGlu bf16 rows=${rows} f=${f} k=${k} ${what}`);
      const [cg, cu] = [new Float32Array(rows * f), new Float32Array(rows * f)];
      bf16Cpu.matmul(cg, x, gate, rows);
      bf16Cpu.matmul(cu, x, up, rows);
      cpuBackend.siluMul(cg, cg, cu, rows * f);
      assertClose(out, cg, mag, 8 * EPS32, `swiGlu bf16 rows=${rows} f=${f} k=${k} ${what} vs unfused`);
      return out;
    });
  }
});

test('precision is checked: the native call refuses an unknown code, getBackend an unknown name', async () => {
  const w = randomWeight('bf16', [2, 4]);
  assert.throws(() => nativeAddon().matmul(new Float32Array(2), new Float32Array(4), w.data as Uint16Array, 1, 1, 2, 4, null, 0, 2), /precision must be 0 \(exact\) or 1 \(bf16\), got 2/);
  await assert.rejects(getBackend('cpu', undefined, 'fp8' as never), /E_BAD_OPTION|unknown matmul precision 'fp8'/);
  assert.equal((await getBackend('cpu', undefined, 'bf16')).name, 'cpu+bf16');
  assert.equal((await getBackend('ref', undefined, 'bf16')).name, 'ref+bf16');
});

test('bf16 swiGluExperts (the grouped experts) equals the bf16 per-group ops bit for bit, and differs from exact', () => {
  const [F, K] = [70, 48];
  const experts = [0, 1, 2].map(() => ({ gate: randomWeight('bf16', [F, K]), up: randomWeight('bf16', [F, K]), down: randomWeight('bf16', [K, F]) }));
  const rowStarts = Int32Array.from([0, 2, 2, 7]); // the middle expert gets no rows
  const rows = 7;
  const x = randomF32(rows * K);
  everyIsaAndThreads((what) => {
    const [out, act] = [new Float32Array(rows * K), new Float32Array(rows * F)];
    bf16Cpu.swiGluExperts(out, x, act, experts, rowStarts);
    const [want, wantAct] = [new Float32Array(rows * K), new Float32Array(rows * F)];
    for (let g = 0; g < experts.length; g++) {
      const [a, n] = [rowStarts[g]!, rowStarts[g + 1]! - rowStarts[g]!];
      if (n === 0) continue;
      bf16Cpu.swiGlu(wantAct.subarray(a * F, (a + n) * F), x.subarray(a * K, (a + n) * K), experts[g]!.gate, experts[g]!.up, n);
      bf16Cpu.matmul(want.subarray(a * K, (a + n) * K), wantAct.subarray(a * F, (a + n) * F), experts[g]!.down, n);
    }
    assert.ok(sameBits(act, wantAct) && sameBits(out, want), `swiGluExperts bf16 ${what}: differs from the per-group bf16 ops (seed ${SEED})`);
    const exact = new Float32Array(rows * K);
    cpuBackend.swiGluExperts(exact, x, new Float32Array(rows * F), experts, rowStarts);
    assert.ok(!sameBits(out, exact), `swiGluExperts bf16 ${what}: gave the exact mode's bits`);
    return out;
  });
});

test('every op of the bf16 backend that multiplies weights is its own; the rest are the exact backend\'s', () => {
  // A new matmul-based op inherited unchanged from the exact backend would silently compute exactly.
  const own = Object.keys(cpuBackend).filter((k) => k !== 'name' && bf16Cpu[k as keyof typeof bf16Cpu] !== cpuBackend[k as keyof typeof cpuBackend]).sort();
  const shared = Object.keys(cpuBackend).filter((k) => k !== 'name' && !own.includes(k)).sort();
  assert.deepEqual(own, ['matmul', 'swiGlu', 'swiGluExperts']);
  assert.deepEqual(shared, ['attention', 'rmsNorm', 'rope', 'siluMul']);
});
