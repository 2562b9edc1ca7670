import type { ExpertJob, ModuleTimes } from './dispatch.js';
import { swiglu } from './swiglu.js';

/**
 * The building blocks the dispatch policies compose their execution from: gather slot rows into an
 * expert buffer, run the grouped expert product, scatter or combine back. Each is timed into one of
 * FSMoE's modules by `timed`.
 */

/** Runs f and adds its wall time (ms) to times[module]. */
export function timed<T>(times: ModuleTimes, module: keyof ModuleTimes, f: () => T): T {
  const t0 = performance.now();
  const r = f();
  times[module] += performance.now() - t0;
  return r;
}

/** Token of assignment a. */
export const tokenOf = (a: number, k: number): number => (a / k) | 0;

/**
 * dst[s - from] = x[token of slots[s]] for s in [from, to): the index-based dispatch (Tutel's,
 * MegaBlocks', dynamic gating's reorder by the permutation, O(rows · hidden)); padding rows are zeros.
 */
export function gatherSlots(dst: Float32Array, job: ExpertJob, from: number, to: number): void {
  const { x, hidden: H, plan } = job;
  const k = job.routing.k;
  for (let s = from; s < to; s++) {
    const a = plan.slots[s]!;
    const d = (s - from) * H;
    if (a < 0) dst.fill(0, d, d + H);
    else {
      const t = tokenOf(a, k);
      dst.set(x.subarray(t * H, t * H + H), d);
    }
  }
}

/**
 * The grouped expert product: expert e runs SwiGLU on rows [offsets[e], offsets[e+1]) of xs into the
 * same rows of ys, one call per non-empty group through shared gate/up buffers. Rows of padding are
 * computed like any other row (that is the cost padding has).
 */
export function groupedExperts(job: ExpertJob, ys: Float32Array, xs: Float32Array): void {
  const { plan, hidden: H, backend, buffers } = job;
  for (let e = 0; e < plan.numExperts; e++) {
    const a = plan.offsets[e]!;
    const n = plan.offsets[e + 1]! - a;
    if (n === 0) continue;
    swiglu(backend, buffers, 'moe.expert', ys.subarray(a * H, (a + n) * H), xs.subarray(a * H, (a + n) * H), n, job.experts[e]!);
  }
}

/** out[token] += w · ys[s - from] for the real slots s in [from, to): the scatter-add combine. */
export function scatterSlots(job: ExpertJob, ys: Float32Array, from: number, to: number): void {
  const { out, hidden: H, plan, routing } = job;
  const k = routing.k;
  for (let s = from; s < to; s++) {
    const a = plan.slots[s]!;
    if (a < 0) continue;
    const w = routing.weights[a]!;
    const o = tokenOf(a, k) * H;
    const y = (s - from) * H;
    for (let i = 0; i < H; i++) out[o + i]! += w * ys[y + i]!;
  }
}
