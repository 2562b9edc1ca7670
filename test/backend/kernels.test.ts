import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { swiGluExpertsByGroup } from '../../src/tensor/backend.js';
import { cpuBackend, getThreads, isa, setIsa, setThreads, supportedIsas } from '../../src/tensor/cpu-backend.js';
import type { IsaName } from '../../src/tensor/cpu-backend.js';
import { nativeAddon } from '../../src/tensor/native.js';
import type { DType } from '../../src/tensor/dtype.js';
import { f32ToBf16, f32ToF16 } from '../../src/tensor/dtype.js';
import type { Weight } from '../../src/tensor/weight.js';
import { rng } from '../helpers/random.js';

/**
 * Every op of the `cpu` backend against the reference backend (float64, obvious loops) on fresh random
 * inputs, for every instruction set this CPU runs and for 1 and 2 threads, at awkward sizes (vector
 * tails, single rows/columns, sizes just off a multiple of the SIMD width). Outputs carry sentinels
 * past their end that must survive; inputs must come back unchanged; outputs must be finite.
 *
 * Error bounds: the reference widens bf16/f16 weights exactly as the kernels do, so the only
 * difference is f32 versus f64 arithmetic. Each bound is a multiple of f32 epsilon (1.2e-7) scaled by
 * the magnitude of what was summed (e.g. sum |x·w| for a dot product), the same for every weight dtype.
 */

const SEED = (Date.now() ^ (process.pid << 8)) >>> 0;
const SENTINEL = 1234.5;
const PAD = 7;

const rand = rng(SEED);
const uniform = (lo: number, hi: number): number => lo + (hi - lo) * rand();

function randomF32(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = uniform(-scale, scale);
  return a;
}

/**
 * An output region of n elements inside a larger buffer with PAD sentinels on both sides; `view` is
 * the part the op may write. The view starts at a byte offset, as views into shared buffers do.
 */
function padded(n: number): { buf: Float32Array; view: Float32Array } {
  const buf = new Float32Array(n + 2 * PAD).fill(SENTINEL);
  const view = buf.subarray(PAD, PAD + n);
  view.fill(Number.NaN);
  return { buf, view };
}

function checkSentinels(buf: Float32Array, n: number, what: string): void {
  for (let i = 0; i < buf.length; i++) {
    if (i >= PAD && i < PAD + n) continue;
    if (buf[i] !== SENTINEL) assert.fail(`${what}: wrote outside the output, element ${i - PAD} is ${buf[i]} (seed ${SEED})`);
  }
}

/** A weight of the given dtype with random values; f16 weights include subnormals and tiny values. */
function randomWeight(name: string, dtype: DType, shape: number[], scale = 1): Weight {
  const n = shape.reduce((a, b) => a * b, 1);
  // Data sits at an odd element offset inside a larger buffer, like a tensor inside an mmapped file:
  // the kernels must honour the view's byte offset and cope with unaligned rows.
  const OFFSET = 3;
  if (dtype === 'f32') {
    const buf = new Float32Array(n + OFFSET + 2);
    buf.set(randomF32(n, scale), OFFSET);
    return { name, dtype, shape, data: buf.subarray(OFFSET, OFFSET + n) };
  }
  const data = new Uint16Array(n + OFFSET + 2).subarray(OFFSET, OFFSET + n);
  for (let i = 0; i < n; i++) {
    const v = uniform(-scale, scale);
    if (dtype === 'bf16') data[i] = f32ToBf16(v);
    else data[i] = rand() < 0.1 ? Math.floor(rand() * 0x10000) & 0x83ff : f32ToF16(v); // 10%: ±subnormal bits
  }
  return { name, dtype, shape, data };
}

/** |a - b| <= tol * mag[i] for every element, all finite; mag is the magnitude the value was built from. */
function assertClose(got: Float32Array, want: Float32Array, mag: Float64Array, tol: number, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const bound = tol * mag[i]! + 1e-30;
    // Messages are built only on failure: these loops see millions of elements.
    if (!Number.isFinite(g)) assert.fail(`${what}: element ${i} is ${g} (seed ${SEED})`);
    if (!(Math.abs(g - w) <= bound)) {
      assert.fail(`${what}: element ${i} = ${g}, reference ${w}, |diff| ${Math.abs(g - w)} > ${bound} (seed ${SEED})`);
    }
  }
}

const EPS32 = 2 ** -23;
const ISAS: IsaName[] = supportedIsas();
const THREADS = [1, 2, 3]; // 3 > this machine's cores: workers get descheduled mid-job

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** One op call on fixed inputs: runs it (checking what it can) and returns the output it wrote. */
type Case = { label: string; run: (what: string) => Float32Array };

/**
 * Runs every case once per (isa, threads) and checks that 1 and 2 threads agree bit for bit. The
 * thread count changes once per pass, not per case, since resizing the pool starts and joins threads.
 */
function runCases(cases: Case[]): void {
  for (const name of ISAS) {
    setIsa(name);
    const first: Float32Array[] = [];
    for (const t of THREADS) {
      setThreads(t);
      cases.forEach((c, i) => {
        const out = c.run(`${c.label} [${name}, ${t} threads]`);
        if (first[i] === undefined) first[i] = out.slice();
        else if (!sameBits(out, first[i]!)) assert.fail(`${c.label} [${name}]: 1 and ${t} threads differ (seed ${SEED})`);
      });
    }
  }
}

test('the addon reports its instruction sets and threads', () => {
  assert.ok(ISAS.length >= 1 && ISAS[0] === 'portable', `supported: ${ISAS.join(', ')}`);
  for (const name of ISAS) {
    setIsa(name);
    assert.equal(isa(), name);
  }
  setThreads(1);
  assert.equal(getThreads(), 1);
  setThreads(2);
  assert.equal(getThreads(), 2);
  assert.throws(() => setIsa('sse9' as IsaName), { code: 'E_BAD_OPTION' });
  assert.throws(() => setThreads(0), { code: 'E_BAD_OPTION' });
});

test('matmul matches the reference for every dtype, size, bias and ISA', () => {
  const cases: Case[] = [];
  const rowsList = [1, 2, 3, 5, 17];
  const kList = [1, 7, 33, 64, 257];
  const nList = [1, 3, 15, 16, 129];
  for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
    for (const rows of rowsList) {
      for (const k of kList) {
        for (const n of nList) {
          for (const withBias of [false, true]) {
            const w = randomWeight('w', dtype, [n, k]);
            const bias = withBias ? randomWeight('b', dtype, [n]) : undefined;
            const x = randomF32(rows * k);
            const xCopy = x.slice();
            const want = new Float32Array(rows * n);
            refBackend.matmul(want, x, w, rows, bias);
            const mag = magnitude(x, w, rows, bias);
            const label = `matmul ${dtype} rows=${rows} k=${k} n=${n} bias=${withBias}`;
            cases.push({ label, run: (what) => {
              const { buf, view } = padded(rows * n);
              cpuBackend.matmul(view, x, w, rows, bias);
              checkSentinels(buf, rows * n, what);
              assert.deepEqual(x, xCopy, `${what}: x was modified`);
              assertClose(view, want, mag, 4 * EPS32 * Math.sqrt(k + 1), what);
              return view;
            } });
          }
        }
      }
    }
  }
  runCases(cases);
});

/** Independent scale of a matmul's rounding error: sum |x·w| + |bias| per output (via |x|·|W|ᵀ + |b|). */
function magnitude(x: Float32Array, w: Weight, rows: number, bias?: Weight): Float64Array {
  const mag = new Float32Array(rows * w.shape[0]!);
  refBackend.matmul(mag, x.map(Math.abs), { ...w, data: absWeight(w) }, rows, bias && { ...bias, data: absWeight(bias) });
  return Float64Array.from(mag);
}

/** The same weight with every element's sign cleared (bit 15 for bf16/f16). */
function absWeight(w: Weight): Float32Array | Uint16Array {
  return w.dtype === 'f32' ? (w.data as Float32Array).map(Math.abs) : (w.data as Uint16Array).map((h) => h & 0x7fff);
}

test('matmul splits large problems across threads without changing results', () => {
  const cases: Case[] = [];
  // Shapes big enough that the pool splits by columns (rows=1), by rows (few columns) and both.
  const shapes: [number, number, number][] = [[1, 1000, 1024], [64, 8, 600], [17, 300, 512]];
  for (const [rows, n, k] of shapes) {
    for (const dtype of ['f32', 'bf16'] as DType[]) {
      const w = randomWeight('w', dtype, [n, k]);
      const x = randomF32(rows * k);
      const want = new Float32Array(rows * n);
      refBackend.matmul(want, x, w, rows);
      const mag = magnitude(x, w, rows);
      cases.push({ label: `matmul ${dtype} ${rows}x${n}x${k}`, run: (what) => {
        const { buf, view } = padded(rows * n);
        cpuBackend.matmul(view, x, w, rows);
        checkSentinels(buf, rows * n, what);
        assertClose(view, want, mag, 4 * EPS32 * Math.sqrt(k), what);
        return view;
      } });
    }
  }
  runCases(cases);
});

test('a row computed alone equals the same row inside a batch, bit for bit (batching never changes a result)', () => {
  const cases: Case[] = [];
  // k a multiple of 4 vectors (the decode loop's step) plus a tail; rows exercising the 4-row block and its remainders
  for (const [rows, n, k] of [[7, 37, 1024 + 19], [5, 9, 64], [3, 130, 256]] as [number, number, number][]) {
    for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
      const w = randomWeight('w', dtype, [n, k]);
      const x = randomF32(rows * k);
      cases.push({ label: `matmul ${dtype} ${rows}x${n}x${k} row by row`, run: (what) => {
        const batch = new Float32Array(rows * n);
        cpuBackend.matmul(batch, x, w, rows);
        const one = new Float32Array(n);
        for (let r = 0; r < rows; r++) {
          cpuBackend.matmul(one, x.subarray(r * k, (r + 1) * k), w, 1);
          if (!sameBits(one, batch.subarray(r * n, (r + 1) * n))) assert.fail(`${what}: row ${r} alone differs from row ${r} of the batch (seed ${SEED})`);
        }
        return batch;
      } });
    }
  }
  runCases(cases);
});

test('thousands of back-to-back split calls give identical results (pool handshake)', () => {
  // Small enough to be quick, big enough to be split: exercises wake-up, chunk claiming and the
  // close/wait handshake many times, with workers that may arrive late or not at all.
  const n = 256;
  const k = 512;
  const w = randomWeight('w', 'bf16', [n, k]);
  const x = randomF32(k);
  for (const t of [2, 3]) {
    setThreads(t);
    const first = new Float32Array(n);
    cpuBackend.matmul(first, x, w, 1);
    const y = new Float32Array(n);
    for (let i = 0; i < 2000; i++) {
      y.fill(Number.NaN);
      cpuBackend.matmul(y, x, w, 1);
      if (!sameBits(y, first)) assert.fail(`call ${i} with ${t} threads differs`);
    }
  }
});

test('rmsNorm matches the reference for every gain dtype, in place and not', () => {
  const cases: Case[] = [];
  for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
    for (const rows of [1, 2, 3, 5, 17]) {
      for (const dim of [1, 7, 33, 64, 257, 1000]) {
        const g = randomWeight('g', dtype, [dim], 2);
        const x = randomF32(rows * dim, 3);
        const eps = rand() < 0.5 ? 1e-5 : 1e-6;
        const want = new Float32Array(rows * dim);
        refBackend.rmsNorm(want, x, g, rows, eps);
        // |y| itself bounds the rounding error of x * inv * g.
        const mag = Float64Array.from(want, (v) => Math.abs(v));
        for (const inPlace of [false, true]) {
          cases.push({ label: `rmsNorm ${dtype} rows=${rows} dim=${dim} inPlace=${inPlace}`, run: (what) => {
            const { buf, view } = padded(rows * dim);
            if (inPlace) {
              view.set(x);
              cpuBackend.rmsNorm(view, view, g, rows, eps);
            } else {
              const xc = x.slice();
              cpuBackend.rmsNorm(view, xc, g, rows, eps);
              assert.deepEqual(xc, x, `${what}: x was modified`);
            }
            checkSentinels(buf, rows * dim, what);
            assertClose(view, want, mag, 16 * EPS32, what);
            return view;
          } });
        }
      }
    }
  }
  runCases(cases);
});

test('rope matches the reference, including large positions', () => {
  const cases: Case[] = [];
  for (const tokens of [1, 3, 5, 40]) {
    for (const heads of [1, 3, 8]) {
      for (const headDim of [2, 6, 34, 64, 128]) {
        for (const pos0 of [0, 7, 5000, 131071]) {
          const theta = rand() < 0.5 ? 10000 : 1e6;
          const x = randomF32(tokens * heads * headDim, 2);
          const want = x.slice();
          refBackend.rope(want, [{ tokens, pos0 }], heads, headDim, theta);
          // Each output is a·c ± b·s with |c|, |s| <= 1: bounded by |a| + |b| of its pair.
          const mag = new Float64Array(x.length);
          const half = headDim / 2;
          for (let base = 0; base < x.length; base += headDim) {
            for (let i = 0; i < half; i++) {
              const m = Math.abs(x[base + i]!) + Math.abs(x[base + i + half]!);
              mag[base + i] = m;
              mag[base + i + half] = m;
            }
          }
          cases.push({ label: `rope tokens=${tokens} heads=${heads} headDim=${headDim} pos0=${pos0}`, run: (what) => {
            const { buf, view } = padded(x.length);
            view.set(x);
            cpuBackend.rope(view, [{ tokens, pos0 }], heads, headDim, theta);
            checkSentinels(buf, x.length, what);
            assertClose(view, want, mag, 4 * EPS32, what);
            return view;
          } });
        }
      }
    }
  }
  runCases(cases);
});

test('attention matches the reference: GQA 1/2/3/4/8, sliding window, pos0 > 0', () => {
  const shapes: { tokens: number; pos0: number; kvHeads: number; group: number; headDim: number; window: number }[] = [];
  const cases: Case[] = [];
  for (const group of [1, 2, 3, 4, 8]) {
    for (const [tokens, pos0] of [[1, 0], [1, 9], [3, 0], [7, 5], [20, 100]] as const) {
      for (const window of [0, 3, 8]) {
        for (const headDim of [8, 20, 64]) shapes.push({ tokens, pos0, kvHeads: 2, group, headDim, window });
      }
    }
  }
  for (const c of shapes) {
    const heads = c.kvHeads * c.group;
    const ctx = c.pos0 + c.tokens;
    const q = randomF32(c.tokens * heads * c.headDim, 2);
    const k = randomF32(ctx * c.kvHeads * c.headDim, 2);
    const v = randomF32(ctx * c.kvHeads * c.headDim, 3);
    const copies = [q.slice(), k.slice(), v.slice()];
    const want = new Float32Array(q.length);
    refBackend.attention(want, q, [{ kCache: k, vCache: v, tokens: c.tokens, pos0: c.pos0 }], heads, c.kvHeads, c.headDim, c.window);
    // Outputs are convex combinations of value rows: bounded by max |v| (3), scores' error is relative.
    const mag = new Float64Array(q.length).fill(3 * Math.sqrt(c.headDim));
    const label = `attention tokens=${c.tokens} pos0=${c.pos0} heads=${heads}/${c.kvHeads} headDim=${c.headDim} window=${c.window}`;
    cases.push({ label, run: (what) => {
      const { buf, view } = padded(q.length);
      cpuBackend.attention(view, q, [{ kCache: k, vCache: v, tokens: c.tokens, pos0: c.pos0 }], heads, c.kvHeads, c.headDim, c.window);
      checkSentinels(buf, q.length, what);
      assert.deepEqual([q, k, v], copies, `${what}: an input was modified`);
      assertClose(view, want, mag, 16 * EPS32, what);
      return view;
    } });
  }
  runCases(cases);
});

test('grouped-query attention equals multi-head attention over repeated kv heads, bit for bit', () => {
  // The kernel attends the query heads of a kv head together; each must get the bits it gets alone.
  const cases: Case[] = [];
  for (const group of [2, 3, 4, 5, 8]) {
    for (const [tokens, pos0, headDim, window] of [[1, 37, 64, 0], [5, 3, 20, 0], [2, 60, 128, 16]] as const) {
      const kvHeads = 2, heads = kvHeads * group, ctx = pos0 + tokens;
      const q = randomF32(tokens * heads * headDim, 2);
      const k = randomF32(ctx * kvHeads * headDim, 2);
      const v = randomF32(ctx * kvHeads * headDim, 3);
      // the same keys and values with every kv head repeated for each query head of its group
      const repeat = (m: Float32Array): Float32Array => {
        const r = new Float32Array(ctx * heads * headDim);
        for (let p = 0; p < ctx; p++) for (let h = 0; h < heads; h++) r.set(m.subarray((p * kvHeads + Math.floor(h / group)) * headDim, (p * kvHeads + Math.floor(h / group) + 1) * headDim), (p * heads + h) * headDim);
        return r;
      };
      const kr = repeat(k), vr = repeat(v);
      cases.push({ label: `GQA group ${group} tokens=${tokens} headDim=${headDim}`, run: (what) => {
        const grouped = new Float32Array(q.length), alone = new Float32Array(q.length);
        cpuBackend.attention(grouped, q, [{ kCache: k, vCache: v, tokens, pos0 }], heads, kvHeads, headDim, window);
        cpuBackend.attention(alone, q, [{ kCache: kr, vCache: vr, tokens, pos0 }], heads, heads, headDim, window);
        assert.deepEqual(grouped, alone, what);
        return grouped;
      } });
    }
  }
  runCases(cases);
});

test('rope and attention over a batch of sequences equal one call per sequence, bit for bit', () => {
  // different lengths and positions, one prefill chunk among decode tokens, a sliding window
  const seqSpecs = [[1, 40], [5, 0], [1, 3], [12, 7], [1, 0]] as const;
  const kvHeads = 2, heads = 4, headDim = 20;
  const kvDim = kvHeads * headDim, qDim = heads * headDim;
  const total = seqSpecs.reduce((a, [t]) => a + t, 0);
  const seqs = seqSpecs.map(([tokens, pos0]) => ({ tokens, pos0, kCache: randomF32((pos0 + tokens) * kvDim, 2), vCache: randomF32((pos0 + tokens) * kvDim, 2) }));
  const q = randomF32(total * qDim, 2);
  const cases: Case[] = [];
  for (const window of [0, 4]) {
    cases.push({ label: `batched rope + attention window=${window}`, run: (what) => {
      const qb = q.slice();
      cpuBackend.rope(qb, seqs, heads, headDim, 10000);
      const out = new Float32Array(total * qDim);
      cpuBackend.attention(out, qb, seqs, heads, kvHeads, headDim, window);
      const want = new Float32Array(total * qDim);
      const refOut = new Float32Array(total * qDim);
      refBackend.attention(refOut, qb, seqs, heads, kvHeads, headDim, window);
      let r = 0;
      for (const s of seqs) {
        const rows = s.tokens * qDim;
        const qs = q.slice(r, r + rows);
        cpuBackend.rope(qs, [s], heads, headDim, 10000);
        if (!sameBits(qs, qb.subarray(r, r + rows))) assert.fail(`${what}: rope of a sequence differs alone (seed ${SEED})`);
        cpuBackend.attention(want.subarray(r, r + rows), qs, [s], heads, kvHeads, headDim, window);
        r += rows;
      }
      if (!sameBits(out, want)) assert.fail(`${what}: the batched call differs from one call per sequence (seed ${SEED})`);
      assertClose(out, refOut, new Float64Array(out.length).fill(2 * Math.sqrt(headDim)), 16 * EPS32, what);
      return out;
    } });
  }
  runCases(cases);
});

test('attention with a window of 1 returns the current value row (hand-worked)', () => {
  // With window 1 each query sees only its own position, so softmax is [1] and out = v[pos].
  const heads = 4;
  const kvHeads = 2;
  const headDim = 5;
  const tokens = 3;
  const pos0 = 2;
  const q = randomF32(tokens * heads * headDim);
  const k = randomF32((pos0 + tokens) * kvHeads * headDim);
  const v = randomF32((pos0 + tokens) * kvHeads * headDim);
  for (const name of ISAS) {
    setIsa(name);
    const out = new Float32Array(q.length);
    cpuBackend.attention(out, q, [{ kCache: k, vCache: v, tokens, pos0 }], heads, kvHeads, headDim, 1);
    for (let t = 0; t < tokens; t++) {
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor(h / (heads / kvHeads));
        for (let d = 0; d < headDim; d++) {
          const got = out[(t * heads + h) * headDim + d]!;
          const exp = v[((pos0 + t) * kvHeads + kvh) * headDim + d]!;
          assert.ok(Math.abs(got - exp) <= 1e-6 * Math.abs(exp) + 1e-7, `${name}: t=${t} h=${h} d=${d}: ${got} vs ${exp}`);
        }
      }
    }
  }
});

test('siluMul matches the reference, in place and with extreme values', () => {
  const cases: Case[] = [];
  for (const n of [0, 1, 7, 33, 257, 5000]) {
    const gate = randomF32(n, 12);
    for (let i = 0; i < n; i += 11) gate[i] = [-100, 100, -88.8, 88.8, -104, 0][i % 6]!;
    const up = randomF32(n, 2);
    const want = new Float32Array(n);
    refBackend.siluMul(want, gate, up, n);
    const mag = Float64Array.from(want, (x) => Math.abs(x));
    for (const alias of ['none', 'gate', 'up'] as const) {
      cases.push({ label: `siluMul n=${n} alias=${alias}`, run: (what) => {
        const { buf, view } = padded(n);
        const g = alias === 'gate' ? view : gate.slice();
        const u = alias === 'up' ? view : up.slice();
        if (alias === 'gate') view.set(gate);
        if (alias === 'up') view.set(up);
        cpuBackend.siluMul(view, g, u, n);
        checkSentinels(buf, n, what);
        assertClose(view, want, mag, 8 * EPS32, what);
        return view;
      } });
    }
  }
  runCases(cases);
});

test('swiGlu (fused gate/up/SiLU) matches the reference and the unfused ops', () => {
  const cases: Case[] = [];
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    for (const [rows, f, k] of [[1, 1, 1], [1, 129, 33], [3, 15, 64], [5, 600, 7], [17, 1100, 65], [130, 33, 40]] as const) {
      const gate = randomWeight('gate', dtype, [f, k]);
      const up = randomWeight('up', dtype, [f, k]);
      const x = randomF32(rows * k);
      const want = new Float32Array(rows * f);
      refBackend.swiGlu(want, x, gate, up, rows);
      // error bound: the projections' errors scale with Σ|x||w| (magnitude), propagated through
      // silu(g)·u: |d out| <= 1.1·|u|·dg + |silu(g)|·du, plus the output's own rounding
      const gRef = new Float32Array(rows * f);
      const uRef = new Float32Array(rows * f);
      refBackend.matmul(gRef, x, gate, rows);
      refBackend.matmul(uRef, x, up, rows);
      const mg = magnitude(x, gate, rows);
      const mu = magnitude(x, up, rows);
      const mag = Float64Array.from(want, (v, i) => {
        const gi = gRef[i]!;
        return 1.1 * Math.abs(uRef[i]!) * mg[i]! + Math.abs(gi / (1 + Math.exp(-gi))) * mu[i]! + Math.abs(v);
      });
      const g = new Float32Array(rows * f);
      const u = new Float32Array(rows * f);
      cases.push({ label: `swiGlu ${dtype} rows=${rows} f=${f} k=${k}`, run: (what) => {
        const { buf, view } = padded(rows * f);
        cpuBackend.swiGlu(view, x, gate, up, rows);
        checkSentinels(buf, rows * f, what);
        // the same projections as matmul, matmul, siluMul; only SiLU's exp may differ in the last bits
        // (vector exp vs the scalar tail of each row segment)
        cpuBackend.matmul(g, x, gate, rows);
        cpuBackend.matmul(u, x, up, rows);
        cpuBackend.siluMul(g, g, u, rows * f);
        assertClose(view, g, mag, 8 * EPS32, `${what} vs unfused`);
        // relative to the output magnitude: SiLU·up of k-term dot products
        assertClose(view, want, mag, 8 * EPS32, what);
        return view;
      } });
    }
  }
  runCases(cases);
});

test('swiGluExperts (one grouped call for a layer) equals swiGlu + matmul per group, bit for bit, and the reference', () => {
  const cases: Case[] = [];
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    // [rows per group], ffn, hidden: empty groups, one row, rows past a 64-row chunk, ffn past a tile
    for (const [counts, f, k] of [[[1, 1], 1, 1], [[1, 0, 2], 129, 33], [[3, 5, 0, 1], 600, 64], [[70, 1], 65, 40], [[0, 17, 2], 1100, 65]] as const) {
      const experts = counts.map((_, g) => ({ gate: randomWeight(`g${g}`, dtype, [f, k], 0.5), up: randomWeight(`u${g}`, dtype, [f, k], 0.5), down: randomWeight(`d${g}`, dtype, [k, f], 0.5) }));
      const starts = new Int32Array(counts.length + 1);
      counts.forEach((c, g) => (starts[g + 1] = starts[g]! + c));
      const rows = starts[counts.length]!;
      const x = randomF32(rows * k);
      const want = new Float32Array(rows * k);
      refBackend.swiGluExperts(want, x, new Float32Array(rows * f), experts, starts);
      const mag = Float64Array.from(want, (v) => Math.abs(v) + 1);
      cases.push({ label: `swiGluExperts ${dtype} rows=${counts.join('+')} f=${f} k=${k}`, run: (what) => {
        const { buf, view } = padded(rows * k);
        cpuBackend.swiGluExperts(view, x, new Float32Array(rows * f), experts, starts);
        checkSentinels(buf, rows * k, what);
        const byGroup = new Float32Array(rows * k);
        swiGluExpertsByGroup(cpuBackend, byGroup, x, new Float32Array(rows * f), experts, starts);
        if (!sameBits(view, byGroup)) assert.fail(`${what}: differs from swiGlu + matmul per group (seed ${SEED})`);
        assertClose(view, want, mag, 64 * EPS32 * Math.sqrt(f * k), what);
        return view;
      } });
    }
  }
  runCases(cases);
  assert.throws(() => cpuBackend.swiGluExperts(new Float32Array(4), new Float32Array(4), new Float32Array(4), [], Int32Array.of(0, 1)), { code: 'E_BAD_INPUT' });
});

test('non-finite inputs propagate as in the reference', () => {
  const n = 40; // vector body and scalar tail on every ISA
  const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const gate = randomF32(n, 4);
  for (let i = 0; i < n; i += 7) gate[i] = specials[i % 3]!;
  const up = randomF32(n, 2).map((u) => u + 3); // positive, so Inf * up keeps its sign
  const want = new Float32Array(n);
  refBackend.siluMul(want, gate, up, n);
  const x = randomF32(2 * 9);
  x[4] = Number.NaN;
  const w = randomWeight('w', 'bf16', [3, 9]);
  for (const name of ISAS) {
    setIsa(name);
    const got = new Float32Array(n);
    cpuBackend.siluMul(got, gate, up, n);
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(want[i]!)) assert.ok(Number.isNaN(got[i]!), `${name}: siluMul[${i}] = ${got[i]}, reference NaN`);
      else if (!Number.isFinite(want[i]!)) assert.equal(got[i], want[i], `${name}: siluMul[${i}]`);
    }
    const y = new Float32Array(6);
    cpuBackend.matmul(y, x, w, 2);
    assert.ok(y.slice(0, 3).every(Number.isNaN), `${name}: a NaN in row 0 must poison row 0`);
    assert.ok(y.slice(3).every(Number.isFinite), `${name}: row 1 must stay finite`);
  }
});

test('bad arguments are refused before the native call', () => {
  const w = randomWeight('model.layers.0.mlp.up_proj.weight', 'bf16', [4, 8]);
  assert.throws(() => cpuBackend.matmul(new Float32Array(3), new Float32Array(8), w, 1), (e: Error & { code?: string }) => {
    return e.code === 'E_BAD_INPUT' && e.message.includes('y');
  });
  assert.throws(() => cpuBackend.matmul(new Float32Array(4), new Float32Array(7), w, 1), { code: 'E_BAD_INPUT' });
  const wrongType: Weight = { name: 'bad.weight', dtype: 'bf16', shape: [2, 2], data: new Float32Array(4) };
  assert.throws(() => cpuBackend.matmul(new Float32Array(2), new Float32Array(2), wrongType, 1), /bad\.weight/);
  assert.throws(
    () => cpuBackend.attention(new Float32Array(8), new Float32Array(8), [{ kCache: new Float32Array(8), vCache: new Float32Array(8), tokens: 1, pos0: 0 }], 3, 2, 2, 0),
    { code: 'E_BAD_INPUT' },
  );
  assert.throws(() => cpuBackend.rope(new Float32Array(6), [{ tokens: 1, pos0: 0 }], 1, 3, 10000), { code: 'E_BAD_INPUT' });
  // a batched call checks every sequence's cache, naming the sequence
  assert.throws(
    () => cpuBackend.attention(new Float32Array(16), new Float32Array(16), [{ kCache: new Float32Array(8), vCache: new Float32Array(8), tokens: 1, pos0: 0 }, { kCache: new Float32Array(8), vCache: new Float32Array(7), tokens: 1, pos0: 0 }], 2, 2, 4, 0),
    /vCache of sequence 1/,
  );
  // The addon checks lengths itself too, so a caller bypassing cpu-backend cannot overrun memory.
  const addon = nativeAddon();
  assert.throws(() => addon.matmul(new Float32Array(3), new Float32Array(8), w.data as Float32Array, 1, 1, 4, 8, null, 0), RangeError);
  assert.throws(() => addon.matmul(new Float32Array(4), new Float32Array(8), w.data as Float32Array, 0, 1, 4, 8, null, 0), TypeError);
  assert.throws(() => addon.matmul(new Float32Array(4), new Float32Array(8), w.data as Float32Array, 1, 1, 4, 8, new Uint16Array(3), 1), RangeError);
  assert.throws(() => addon.attention(new Float32Array(8), new Float32Array(8), [new Float32Array(7)], [new Float32Array(8)], Int32Array.of(1), Int32Array.of(0), 2, 2, 4, 0), RangeError);
  assert.throws(() => addon.attention(new Float32Array(8), new Float32Array(8), [new Float32Array(8)], [new Float32Array(8)], Int32Array.of(1, 1), Int32Array.of(0, 0), 2, 2, 4, 0), RangeError);
  assert.throws(() => addon.rope(new Float32Array(8), Int32Array.of(3), Int32Array.of(0), 1, 4, 10000), RangeError);
  assert.throws(() => addon.siluMul(new Float32Array(4), new Float32Array(4), new Float32Array(4), -1), RangeError);
  // an element getter runs JavaScript in the middle of the call: counts it changes are read afterwards
  // (so the length checks see them), and calling the op again from inside it is refused
  const tokens = Int32Array.of(1, 1);
  const k0 = new Float32Array(8);
  const sneaky = [k0, k0];
  Object.defineProperty(sneaky, 0, { get: () => ((tokens[1] = 50), k0) });
  assert.throws(() => addon.attention(new Float32Array(16), new Float32Array(16), sneaky, [k0, k0], tokens, Int32Array.of(0, 0), 2, 2, 4, 0), RangeError);
  const reentrant = [k0];
  Object.defineProperty(reentrant, 0, { get: () => (addon.attention(new Float32Array(8), new Float32Array(8), [k0], [k0], Int32Array.of(1), Int32Array.of(0), 2, 2, 4, 0), k0) });
  assert.throws(() => addon.attention(new Float32Array(8), new Float32Array(8), reentrant, [k0], Int32Array.of(1), Int32Array.of(0), 2, 2, 4, 0), /called again/);
  const starts = Int32Array.of(0, 1);
  const w16 = new Uint16Array(8);
  const ws = [w16, w16, w16];
  Object.defineProperty(ws, 0, { get: () => ((starts[1] = 1000), w16) });
  assert.throws(() => addon.expertsSwiGlu(new Float32Array(2), new Float32Array(2), new Float32Array(4), ws, starts, 1, 2, 4), RangeError);
  assert.throws(() => cpuBackend.attention(new Float32Array(8), new Float32Array(8), [{ kCache: k0, vCache: k0, tokens: 1, pos0: 2 ** 30 }], 2, 2, 0, 0), { code: 'E_BAD_INPUT' });

});
