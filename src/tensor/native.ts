import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MoesaicError, fail } from '../errors.js';

/**
 * The native addon (native/, built by node-gyp into build/Release/moesaic_native.node): SIMD kernels
 * with run-time ISA dispatch and a thread pool, plus mmap. This module only loads it and states its
 * raw interface; src/tensor/cpu-backend.ts wraps it as a `Backend` with argument checks.
 *
 * Arrays are passed zero-copy: the C++ side uses the TypedArray's memory (byte offset included), so a
 * Uint16Array view into an mmapped weight file is read in place.
 */

/** Instruction sets the kernels are compiled for, worst to best. */
export type IsaName = 'portable' | 'avx2' | 'avx512';
export const ISA_NAMES: readonly IsaName[] = ['portable', 'avx2', 'avx512'];

/** What the kernel thread pool spent on coordination since profiling was turned on (native/pool.h). */
export interface PoolStats {
  /** jobs split across the pool's threads */
  readonly jobs: number;
  /** jobs too small to split, run on the calling thread alone */
  readonly inlineJobs: number;
  /** time the calling thread waited, after its own chunks, for workers still inside a job */
  readonly callerWaitMs: number;
  /** workers that joined a job, and their summed delay from the job's publication to joining */
  readonly pickups: number;
  readonly wakeMs: number;
  /** jobs that had to wake a sleeping worker through the condition variable */
  readonly sleepWakes: number;
}

/** Weight arrays: Float32Array for f32, Uint16Array of raw bits for bf16/f16. */
type WeightArray = Float32Array | Uint16Array;

/** An opaque native decode plan (createDecodePlan). */
export type DecodePlanHandle = { readonly __decodePlan: unique symbol };

export interface NativeAddon {
  /**
   * y[rows, n] = x[rows, k] · Wᵀ (+ bias); dtype codes as DTYPE_CODE in dtype.ts; precision 0 exact
   * (default), 1 bf16 activations for bf16 weights (matmul-precision.ts).
   */
  matmul(
    y: Float32Array,
    x: Float32Array,
    w: WeightArray,
    wDtype: number,
    rows: number,
    n: number,
    k: number,
    bias: WeightArray | null,
    biasDtype: number,
    precision?: number,
  ): void;
  rmsNorm(y: Float32Array, x: Float32Array, g: WeightArray, gDtype: number, rows: number, dim: number, eps: number): void;
  /** sequence s: tokens[s] rows of x (one after another) at positions pos0[s], pos0[s] + 1, ... */
  rope(x: Float32Array, tokens: Int32Array, pos0: Int32Array, heads: number, headDim: number, theta: number): void;
  /** sequence s: tokens[s] rows of q/out (one after another) over its own kCaches[s] / vCaches[s] */
  attention(
    out: Float32Array,
    q: Float32Array,
    kCaches: Float32Array[],
    vCaches: Float32Array[],
    tokens: Int32Array,
    pos0: Int32Array,
    heads: number,
    kvHeads: number,
    headDim: number,
    window: number,
  ): void;
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  swiGlu(out: Float32Array, x: Float32Array, wg: WeightArray, wu: WeightArray, wDtype: number, rows: number, n: number, k: number, precision?: number): void;
  /** weights: gate, up, down of each group in turn; group g covers rows [rowStarts[g], rowStarts[g + 1]) */
  expertsSwiGlu(out: Float32Array, x: Float32Array, act: Float32Array, weights: WeightArray[], rowStarts: Int32Array, wDtype: number, hidden: number, ffn: number, precision?: number): void;
  /** What the bf16 matmul precision runs now: AVX-512 BF16 dot products, or f32 kernels on rounded activations. */
  bf16MatmulKernel(): 'vdpbf16ps' | 'rounded-f32';
  isa(): IsaName;
  setIsa(name: string): void;
  supportedIsas(): IsaName[];
  getThreads(): number;
  setThreads(n: number): void;
  readBandwidthGBs(megabytes: number, reps: number): number;
  /**
   * y[rows, n] = x[rows, k] · Wᵀ with W the blocks of a quantized dtype (code as DTYPE_CODE), or the
   * fused SwiGLU silu(x · Wᵀ) * (x · Upᵀ) when `up` is given (same dtype and shape).
   */
  quantMatmul(y: Float32Array, x: Float32Array, w: Uint8Array, wDtype: number, rows: number, n: number, k: number, up: Uint8Array | null): void;
  /** rows of f32 weights x[rows, k] into the blocks of a quantized dtype (the twin of quant/quantize.ts). */
  quantizeRows(x: Float32Array, out: Uint8Array, dtype: number, rows: number, k: number): void;
  /** The quantized kernels' instruction set now: 'portable', 'avx2' or 'avx512-vnni'. */
  quantIsa(): string;
  /** Thread-pool coordination counters on (reset to zero) or off; read with poolStats. */
  setPoolProfiling(on: boolean): void;
  poolStats(): PoolStats;
  /** Throws an Error with code 'E_IO' when the file cannot be opened or mapped. */
  mapFile(path: string): ArrayBuffer;
  /**
   * The fused decode step (native/decode-binding.cc): a plan over one model's weights, then two calls
   * per layer. sizes: [hidden, heads, kvHeads, headDim, ffn, experts, layers, window, ropeTheta, eps,
   * expertDtype, precision]; weights per layer: input norm, q/k/v, o, post-attention norm, router, every
   * expert's gate, then up, then down; dtypes: one DTYPE_CODE per weight.
   */
  createDecodePlan(sizes: Float64Array, weights: WeightArray[], dtypes: Int32Array): DecodePlanHandle;
  /** x through layer's attention block (the token's key/value go to row pos); router logits out */
  decodeAttention(plan: DecodePlanHandle, layer: number, x: Float32Array, kCache: Float32Array, vCache: Float32Array, pos: number, routerLogits: Float32Array): void;
  /** layer's experts half, right after its decodeAttention: chosen experts (routing order) and weights */
  decodeExperts(plan: DecodePlanHandle, layer: number, x: Float32Array, chosen: Int32Array, weights: Float32Array): void;
  /** zeroed anonymous memory at a 2 MiB boundary, advised to be backed by transparent huge pages */
  allocHugePages(bytes: number): ArrayBuffer;
  /** MADV_DONTNEED on the whole pages inside a view of a mapFile buffer (never anonymous memory) */
  releasePages(view: ArrayBufferView): void;
  /** The expert store's slot arena and I/O threads (native/expert-io.h; wrapped by src/memory/expert-store.ts). */
  ExpertArena: new (slotBytes: number, slots: number, ioThreads: number) => NativeExpertArena;
  /** posix_fadvise(DONTNEED) over a whole file: its clean, unmapped pages leave the page cache. */
  dropPageCache(path: string): void;
}

/** Slot states of a NativeExpertArena. */
export const SLOT_IDLE = 0;
export const SLOT_LOADING = 1;
export const SLOT_READY = 2;
export const SLOT_FAILED = 3;

export interface NativeExpertArena {
  /** slots * slotBytes bytes, 4096-aligned */
  readonly buffer: ArrayBuffer;
  /** O_DIRECT when the file system allows it, else buffered reads + posix_fadvise(DONTNEED). */
  open(path: string): { file: number; direct: boolean };
  /** Queue the reads of one slot: ranges = [file, fileOffset, readBytes, slotOffset, needBytes]*; a
   *  read that ends before needBytes fails the slot (short read). Background reads (prefetches) start
   *  only when no other read is queued. */
  load(slot: number, ranges: Float64Array, background?: boolean): void;
  /** A queued background read of the slot becomes a demand read. */
  promote(slot: number): void;
  status(slot: number): number;
  /** why a slot failed ('' otherwise) */
  error(slot: number): string;
  /** Block until the slot is not loading; its status. */
  wait(slot: number): number;
  /** Block until one of the slots is not loading; its index in `slots`. */
  waitAny(slots: Int32Array): number;
  /** [bytes read, seconds with a read in flight] */
  stats(): Float64Array;
  close(): void;
}

/** build/Release/moesaic_native.node, relative to the package root (this file is dist/src/tensor/native.js). */
export const ADDON_PATH = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'), 'build', 'Release', 'moesaic_native.node');

let addon: NativeAddon | undefined;

/**
 * The loaded addon (loaded once; a process has one copy of the kernels). MOESAIC_ISA=portable|avx2|avx512
 * forces an instruction set at load, for testing a path or working around a CPU quirk.
 */
export function nativeAddon(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  let loaded: NativeAddon;
  try {
    loaded = require(ADDON_PATH) as NativeAddon;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    fail('E_NATIVE', `native addon not built: run npm install (node-gyp) to build ${ADDON_PATH} (${why})`);
  }
  const forced = process.env['MOESAIC_ISA'];
  if (forced) {
    if (!(ISA_NAMES as readonly string[]).includes(forced)) {
      fail('E_BAD_OPTION', `MOESAIC_ISA=${forced}: expected one of ${ISA_NAMES.join(', ')}`);
    }
    try {
      loaded.setIsa(forced);
    } catch (e) {
      fail('E_NATIVE', `MOESAIC_ISA=${forced}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  addon = loaded;
  return addon;
}

/** True when the addon can be loaded (tests of other areas use it to pick a backend). */
export function nativeAvailable(): boolean {
  try {
    nativeAddon();
    return true;
  } catch (e) {
    if (e instanceof MoesaicError && e.code === 'E_NATIVE') return false;
    throw e;
  }
}
