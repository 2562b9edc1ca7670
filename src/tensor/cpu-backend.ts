import { fail, MoesaicError } from '../errors.js';
import type { Backend, GatedFfn, SeqRows } from './backend.js';
import { swiGluExpertsByGroup } from './backend.js';
import { DTYPE_CODE } from './dtype.js';
import { isQuantType, QUANT_FORMATS, quantRowBytes } from './quant/formats.js';
import type { MatmulPrecision } from './matmul-precision.js';
import type { IsaName, PoolStats } from './native.js';
import { ISA_NAMES, nativeAddon } from './native.js';
import type { Weight } from './weight.js';
import { weightAt } from './weight.js';

/**
 * The `cpu` backend: the native addon's SIMD kernels (AVX-512 / AVX2 / portable, chosen at run time)
 * on a persistent thread pool. Same functions as `refBackend` (the specification), f32 activations and
 * accumulation; bf16/f16 weights are widened inside the kernels. The addon loads on first use, so
 * importing this module never fails on a machine where it was not built.
 *
 * Each op checks its arguments here, naming the tensor at fault, before the zero-copy native call.
 */

/** A quantized weight's blocks: a Uint8Array of n rows of k / block blocks, k a multiple of the block. */
function checkQuantWeight(op: string, w: Weight, n: number, k: number, role: string): void {
  if (!isQuantType(w.dtype)) return;
  const block = QUANT_FORMATS[w.dtype].block;
  if (k % block !== 0) fail('E_BAD_INPUT', `${op}: ${role} ${w.name} is ${w.dtype} with rows of ${k} weights, not a multiple of its block of ${block}`);
  if (!(w.data instanceof Uint8Array)) fail('E_BAD_INPUT', `${op}: ${role} ${w.name} has dtype ${w.dtype} but its data is a ${w.data.constructor.name}`);
  const need = n * quantRowBytes(w.dtype, k);
  if (w.data.length < need) fail('E_BAD_INPUT', `${op}: ${role} ${w.name} has ${w.data.length} bytes, needs ${need}`);
}

function addBias(y: Float32Array, bias: Weight, rows: number, n: number): void {
  checkWeight('matmul', bias, n, 'bias');
  for (let j = 0; j < n; j++) {
    const b = weightAt(bias, j);
    for (let r = 0; r < rows; r++) y[r * n + j]! += b;
  }
}

function checkWeight(op: string, w: Weight, need: number, role: string): void {
  if (isQuantType(w.dtype)) fail('E_BAD_INPUT', `${op}: ${role} ${w.name} is quantized (${w.dtype}); this op takes f32/bf16/f16`);
  const want = w.dtype === 'f32' ? Float32Array : Uint16Array;
  if (!(w.data instanceof want)) {
    fail('E_BAD_INPUT', `${op}: ${role} ${w.name} has dtype ${w.dtype} but its data is a ${w.data.constructor.name}`);
  }
  if (w.data.length < need) {
    fail('E_BAD_INPUT', `${op}: ${role} ${w.name} has ${w.data.length} elements, needs ${need}`);
  }
}

function checkArray(op: string, name: string, a: Float32Array, need: number): void {
  if (a.length < need) fail('E_BAD_INPUT', `${op}: ${name} has ${a.length} elements, needs ${need}`);
}

function checkCount(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) fail('E_BAD_INPUT', `${op}: ${name} must be a non-negative integer, got ${v}`);
}

/** The per-sequence token counts and first positions of a batched call, checked, as the addon takes them. */
function seqCounts(op: string, seqs: readonly SeqRows[]): { tokens: Int32Array; pos0: Int32Array; total: number } {
  const tokens = new Int32Array(seqs.length);
  const pos0 = new Int32Array(seqs.length);
  let total = 0;
  seqs.forEach((s, i) => {
    checkCount(op, `tokens of sequence ${i}`, s.tokens);
    checkCount(op, `pos0 of sequence ${i}`, s.pos0);
    if (s.tokens + s.pos0 > 0x7fffffff) fail('E_BAD_INPUT', `${op}: sequence ${i} is too long`);
    tokens[i] = s.tokens;
    pos0[i] = s.pos0;
    total += s.tokens;
  });
  return { tokens, pos0, total };
}

/** The native code of each matmul precision (native/kernels.h MatmulPrecision). */
const PRECISION_CODE: Record<MatmulPrecision, number> = { exact: 0, bf16: 1 };

/** matmul (Backend.matmul) with products of bf16 weights computed in `precision` (a PRECISION_CODE). */
function nativeMatmul(precision: number, y: Float32Array, x: Float32Array, w: Weight, rows: number, bias?: Weight): void {
  if (w.shape.length !== 2) fail('E_BAD_INPUT', `matmul: weight ${w.name} must be 2-D, has shape [${w.shape.join(', ')}]`);
  const [n, k] = w.shape as [number, number];
  checkCount('matmul', 'rows', rows);
  if (isQuantType(w.dtype)) {
    checkQuantWeight('matmul', w, n, k, 'weight');
    checkArray('matmul', 'x', x, rows * k);
    checkArray('matmul', 'y', y, rows * n);
    nativeAddon().quantMatmul(y, x, w.data as Uint8Array, DTYPE_CODE[w.dtype], rows, n, k, null);
    if (bias) addBias(y, bias, rows, n);
    return;
  }
  checkWeight('matmul', w, n * k, 'weight');
  checkArray('matmul', 'x', x, rows * k);
  checkArray('matmul', 'y', y, rows * n);
  if (bias) checkWeight('matmul', bias, n, 'bias');
  nativeAddon().matmul(y, x, w.data as Float32Array | Uint16Array, DTYPE_CODE[w.dtype], rows, n, k, bias ? (bias.data as Float32Array | Uint16Array) : null, bias ? DTYPE_CODE[bias.dtype] : 0, precision);
}

/** swiGlu (Backend.swiGlu) with both projections computed in `precision` (a PRECISION_CODE). */
function nativeSwiGlu(precision: number, out: Float32Array, x: Float32Array, gate: Weight, up: Weight, rows: number): void {
  const [f, k] = gate.shape as [number, number];
  if (gate.shape.length !== 2 || up.shape.length !== 2 || up.shape[0] !== f || up.shape[1] !== k || up.dtype !== gate.dtype) {
    fail('E_BAD_INPUT', `swiGlu: gate ${gate.name} [${gate.shape.join(', ')}] ${gate.dtype} and up ${up.name} [${up.shape.join(', ')}] ${up.dtype} must be 2-D with equal shapes and dtypes`);
  }
  checkCount('swiGlu', 'rows', rows);
  if (isQuantType(gate.dtype)) {
    checkQuantWeight('swiGlu', gate, f, k, 'gate');
    checkQuantWeight('swiGlu', up, f, k, 'up');
    checkArray('swiGlu', 'x', x, rows * k);
    checkArray('swiGlu', 'out', out, rows * f);
    nativeAddon().quantMatmul(out, x, gate.data as Uint8Array, DTYPE_CODE[gate.dtype], rows, f, k, up.data as Uint8Array);
    return;
  }
  checkWeight('swiGlu', gate, f * k, 'gate');
  checkWeight('swiGlu', up, f * k, 'up');
  checkArray('swiGlu', 'x', x, rows * k);
  checkArray('swiGlu', 'out', out, rows * f);
  nativeAddon().swiGlu(out, x, gate.data as Float32Array | Uint16Array, up.data as Float32Array | Uint16Array, DTYPE_CODE[gate.dtype], rows, f, k, precision);
}

/**
 * swiGluExperts (Backend.swiGluExperts) with all three products computed in `precision` (a
 * PRECISION_CODE); experts the grouped kernel does not take run group by group on `byGroup`.
 */
function nativeSwiGluExperts(precision: number, byGroup: Backend, out: Float32Array, x: Float32Array, act: Float32Array, experts: readonly GatedFfn[], rowStarts: Int32Array): void {
  if (rowStarts.length !== experts.length + 1) fail('E_BAD_INPUT', `swiGluExperts: rowStarts has ${rowStarts.length} entries for ${experts.length} experts (needs one more)`);
  if (experts.length === 0) return;
  const [F, K] = experts[0]!.gate.shape as [number, number];
  const dtype = experts[0]!.gate.dtype;
  // The grouped kernel takes f32/bf16/f16 experts of one shape and dtype; anything else (quantized
  // experts, mixed shapes) runs group by group through the same ops.
  const grouped = !isQuantType(dtype) && experts.every((e) => e.gate.dtype === dtype && e.up.dtype === dtype && e.down.dtype === dtype &&
    e.gate.shape[0] === F && e.gate.shape[1] === K && e.up.shape[0] === F && e.up.shape[1] === K && e.down.shape[0] === K && e.down.shape[1] === F);
  if (!grouped) return swiGluExpertsByGroup(byGroup, out, x, act, experts, rowStarts);
  const rows = rowStarts[experts.length]!;
  for (let g = 0; g < experts.length; g++) {
    if (rowStarts[g + 1]! < rowStarts[g]!) fail('E_BAD_INPUT', `swiGluExperts: rowStarts must not decrease (entry ${g + 1})`);
    const e = experts[g]!;
    checkWeight('swiGluExperts', e.gate, F * K, 'gate');
    checkWeight('swiGluExperts', e.up, F * K, 'up');
    checkWeight('swiGluExperts', e.down, F * K, 'down');
  }
  checkArray('swiGluExperts', 'x', x, rows * K);
  checkArray('swiGluExperts', 'out', out, rows * K);
  checkArray('swiGluExperts', 'act', act, rows * F);
  const weights: (Float32Array | Uint16Array)[] = [];
  for (const e of experts) weights.push(e.gate.data as Float32Array | Uint16Array, e.up.data as Float32Array | Uint16Array, e.down.data as Float32Array | Uint16Array);
  nativeAddon().expertsSwiGlu(out, x, act, weights, rowStarts, DTYPE_CODE[dtype], K, F, precision);
}

export const cpuBackend: Backend = {
  name: 'cpu',

  matmul: (y, x, w, rows, bias) => nativeMatmul(PRECISION_CODE.exact, y, x, w, rows, bias),

  rmsNorm(y, x, g, rows, eps) {
    const dim = g.shape[0]!;
    checkCount('rmsNorm', 'rows', rows);
    checkWeight('rmsNorm', g, dim, 'gain');
    checkArray('rmsNorm', 'x', x, rows * dim);
    checkArray('rmsNorm', 'y', y, rows * dim);
    nativeAddon().rmsNorm(y, x, g.data as Float32Array | Uint16Array, DTYPE_CODE[g.dtype], rows, dim, eps);
  },

  rope(x, seqs, heads, headDim, theta) {
    for (const [name, v] of [['heads', heads], ['headDim', headDim]] as const) checkCount('rope', name, v);
    if (headDim % 2 !== 0) fail('E_BAD_INPUT', `rope: headDim must be even, got ${headDim}`);
    const { tokens, pos0, total } = seqCounts('rope', seqs);
    checkArray('rope', 'x', x, total * heads * headDim);
    nativeAddon().rope(x, tokens, pos0, heads, headDim, theta);
  },

  attention(out, q, seqs, heads, kvHeads, headDim, window) {
    const counts = [['heads', heads], ['kvHeads', kvHeads], ['headDim', headDim], ['window', window]] as const;
    for (const [name, v] of counts) checkCount('attention', name, v);
    if (kvHeads === 0 || heads % kvHeads !== 0) {
      fail('E_BAD_INPUT', `attention: heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
    }
    if (headDim === 0) fail('E_BAD_INPUT', 'attention: headDim must be positive');
    const { tokens, pos0, total } = seqCounts('attention', seqs);
    const qLen = total * heads * headDim;
    checkArray('attention', 'q', q, qLen);
    checkArray('attention', 'out', out, qLen);
    const ks: Float32Array[] = [];
    const vs: Float32Array[] = [];
    seqs.forEach((s, i) => {
      const kvLen = (s.pos0 + s.tokens) * kvHeads * headDim;
      checkArray('attention', `kCache of sequence ${i}`, s.kCache, kvLen);
      checkArray('attention', `vCache of sequence ${i}`, s.vCache, kvLen);
      ks.push(s.kCache);
      vs.push(s.vCache);
    });
    nativeAddon().attention(out, q, ks, vs, tokens, pos0, heads, kvHeads, headDim, window);
  },

  swiGlu: (out, x, gate, up, rows) => nativeSwiGlu(PRECISION_CODE.exact, out, x, gate, up, rows),

  swiGluExperts: (out, x, act, experts, rowStarts) => nativeSwiGluExperts(PRECISION_CODE.exact, cpuBackend, out, x, act, experts, rowStarts),

  siluMul(out, gate, up, n) {
    checkCount('siluMul', 'n', n);
    checkArray('siluMul', 'gate', gate, n);
    checkArray('siluMul', 'up', up, n);
    checkArray('siluMul', 'out', out, n);
    nativeAddon().siluMul(out, gate, up, n);
  },
};

/**
 * The `cpu` backend in the bf16 matmul precision (`--matmul-precision bf16`): its matmul, swiGlu and
 * swiGluExperts round the activations of products with bf16 weights to bf16; every other op is the
 * exact backend's. A new op built on matmul gets an entry here too.
 */
const cpuBackendBf16: Backend = {
  ...cpuBackend,
  name: 'cpu+bf16',
  matmul: (y, x, w, rows, bias) => nativeMatmul(PRECISION_CODE.bf16, y, x, w, rows, bias),
  swiGlu: (out, x, gate, up, rows) => nativeSwiGlu(PRECISION_CODE.bf16, out, x, gate, up, rows),
  swiGluExperts: (out, x, act, experts, rowStarts) => nativeSwiGluExperts(PRECISION_CODE.bf16, cpuBackendBf16, out, x, act, experts, rowStarts),
};

/**
 * The native matmul precision code of a `cpu` backend, whose kernels the fused decode step
 * (src/model/fused-decode.ts) calls directly; undefined for any other backend (ref, profiling, wrappers),
 * which runs the per-op path.
 */
export function nativePrecisionCode(backend: Backend): number | undefined {
  if (backend === cpuBackend) return PRECISION_CODE.exact;
  if (backend === cpuBackendBf16) return PRECISION_CODE.bf16;
  return undefined;
}

/** The `cpu` backend in a matmul precision: one shared, stateless object per precision. */
export function cpuBackendFor(precision: MatmulPrecision): Backend {
  return precision === 'bf16' ? cpuBackendBf16 : cpuBackend;
}

/** Threads the kernels use, the calling thread included (default: the machine's logical cores). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 256) fail('E_BAD_OPTION', `threads: expected an integer in 1..256, got ${n}`);
  nativeAddon().setThreads(n);
}

/**
 * This machine's memory read bandwidth in GB/s: all kernel threads streaming through a buffer of
 * `megabytes` (default 1 GiB, far larger than the caches), best of `reps` passes. Decode is
 * memory-bound, so this is the ceiling its achieved GB/s is judged against (moesaic bench generate).
 */
export function readBandwidthGBs(megabytes = 1024, reps = 5): number {
  return nativeAddon().readBandwidthGBs(megabytes, reps);
}

/** Start (reset) or stop counting the thread pool's coordination costs (`bench generate --profile`). */
export function setPoolProfiling(on: boolean): void {
  nativeAddon().setPoolProfiling(on);
}

export function poolStats(): PoolStats {
  return nativeAddon().poolStats();
}

export function getThreads(): number {
  return nativeAddon().getThreads();
}

/**
 * What `--matmul-precision bf16` runs with the instruction set now: 'vdpbf16ps' (AVX-512 BF16 dot
 * products) or 'rounded-f32' (activations rounded to bf16, then the f32 kernels; other bits, same bound).
 */
export function bf16MatmulKernel(): 'vdpbf16ps' | 'rounded-f32' {
  return nativeAddon().bf16MatmulKernel();
}

/** The instruction set the kernels run with now ('portable', 'avx2' or 'avx512'). */
export function isa(): IsaName {
  return nativeAddon().isa();
}

/** The instruction set of the quantized products now ('portable', 'avx2' or 'avx512-vnni'; follows `isa`). */
export function quantIsa(): string {
  return nativeAddon().quantIsa();
}

/** Instruction sets this CPU can run, worst to best (the best is the default). */
export function supportedIsas(): IsaName[] {
  return nativeAddon().supportedIsas();
}

/** Switch the kernels to another instruction set (tests cover every path this way); throws if the CPU lacks it. */
export function setIsa(name: IsaName): void {
  if (!ISA_NAMES.includes(name)) fail('E_BAD_OPTION', `isa: expected one of ${ISA_NAMES.join(', ')}, got ${String(name)}`);
  try {
    nativeAddon().setIsa(name);
  } catch (e) {
    if (e instanceof MoesaicError) throw e;
    fail('E_NATIVE', e instanceof Error ? e.message : String(e));
  }
}

/** Zeroed memory of `bytes` at a 2 MiB boundary, advised to be backed by transparent huge pages (an ordinary buffer where they are off). */
export function allocHugePages(bytes: number): ArrayBuffer {
  try {
    return nativeAddon().allocHugePages(bytes);
  } catch (e) {
    fail('E_IO', `cannot allocate ${bytes} bytes to copy the weights into (--hugepages off keeps them memory-mapped): ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Memory-map a whole file read-only-in-effect (MAP_PRIVATE: a stray write is copy-on-write and never
 * reaches the file) as an ArrayBuffer, unmapped when the buffer is garbage-collected. Weights are
 * typed views into it, so loading a model copies nothing. An empty file gives an empty buffer.
 */
/** Drops the pages of a view into a mapFile buffer from this process (re-read from the file if touched again). Only for mapped files. */
export function releasePages(view: ArrayBufferView): void {
  nativeAddon().releasePages(view);
}

export function mapFile(path: string): ArrayBuffer {
  const addon = nativeAddon();
  try {
    return addon.mapFile(path);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    fail('E_IO', msg.includes(path) ? msg : `cannot map ${path}: ${msg}`);
  }
}

export type { IsaName };
