import type { Weight } from '../tensor/weight.js';

/**
 * Copies every weight out of the memory-mapped checkpoint into one buffer of anonymous memory that
 * the kernel backs with transparent huge pages (`allocHugePages`), and returns the same structure
 * with each Weight's data a view into that buffer.
 *
 * Why: decode streams every weight it uses once per token. In the page cache the weights sit in 4 KiB
 * pages, and every 4 KiB is a TLB miss and a boundary the hardware prefetchers do not cross; in 2 MiB
 * pages neither happens. Measured with the decode GEMV alone over 256 MB of bf16 on this project's
 * 2-core Zen 4 machine (docs/kernels.md): huge pages streamed faster than 4 KiB pages in every
 * alternating pair, best 33-37 GB/s against 22-30 at 2 threads.
 *
 * Each distinct data array is copied once (tied embeddings stay tied), at 64-byte alignment. The
 * copy costs a pass over the weights at load and memory that is no longer the page cache's to evict,
 * so the loader copies only a model that fits in half of the available memory, and hands each copied
 * source to `copied`, which drops its pages from the process (the mapping would otherwise stay resident
 * until garbage collection and a load would hold the model twice).
 */
export function copyToHugePages<T extends object>(weights: T, alloc: (bytes: number) => ArrayBuffer, copied: (source: Weight['data']) => void = () => {}): T {
  const arrays = distinctArrays(weights);
  let bytes = 0;
  for (const a of arrays) bytes = align(bytes) + a.byteLength;
  const buffer = alloc(align(bytes));
  const copies = new Map<Weight['data'], Weight['data']>();
  let offset = 0;
  for (const a of arrays) {
    offset = align(offset);
    const copy = new (a.constructor as Float32ArrayConstructor | Uint16ArrayConstructor | Uint8ArrayConstructor)(buffer, offset, a.length);
    copy.set(a as never);
    copies.set(a, copy);
    copied(a);
    offset += a.byteLength;
  }
  return mapWeights(weights, (w) => ({ ...w, data: copies.get(w.data)! }));
}

const align = (n: number): number => Math.ceil(n / 64) * 64;

/** Bytes of the distinct weight arrays in `weights` (what copyToHugePages would copy, before alignment). */
export function weightBytes(weights: object): number {
  let bytes = 0;
  for (const a of distinctArrays(weights)) bytes += a.byteLength;
  return bytes;
}

/** Each weight's data array once, in the order the structure lists them (shared arrays: tied weights). */
function distinctArrays(weights: object): Set<Weight['data']> {
  const arrays = new Set<Weight['data']>();
  visitWeights(weights, (w) => arrays.add(w.data));
  return arrays;
}

function isWeight(v: unknown): v is Weight {
  return typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && ArrayBuffer.isView((v as Weight).data);
}

function visitWeights(v: unknown, f: (w: Weight) => void): void {
  if (isWeight(v)) f(v);
  else if (Array.isArray(v)) for (const x of v) visitWeights(x, f);
  else if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) for (const x of Object.values(v)) visitWeights(x, f);
}

function mapWeights<T>(v: T, f: (w: Weight) => Weight): T {
  if (isWeight(v)) return f(v) as T;
  if (Array.isArray(v)) return v.map((x) => mapWeights(x, f)) as T;
  if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = mapWeights(x, f);
    return out as T;
  }
  return v;
}
