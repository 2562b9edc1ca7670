import type { DispatchPlan, ExpertJob, ExpertRows, ModuleTimes } from './dispatch.js';
import { chunkOffsets } from './dispatch.js';

/**
 * The building blocks the policies compose their Prepare and Finalize from: gather slot rows into the
 * per-expert layout, and scatter-add them back. Each is timed into one of FSMoE's modules by `timed`.
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
 * Prepare by gathering: slots [from, to) into buffers `tag.in` / `tag.out` [to - from, hidden] in
 * expert order. Shared by every index-based policy (dynamic, tutel, megablocks, fastmoe).
 */
export function gatherPrepare(job: ExpertJob, from: number, to: number, tag: string): ExpertRows {
  const H = job.hidden;
  const n = to - from;
  const xs = job.buffers.get(`${tag}.in`, n * H); // [n, H] tokens in expert order
  timed(job.times, 'order', () => gatherSlots(xs, job, from, to));
  const ys = job.buffers.get(`${tag}.out`, n * H); // [n, H]
  return { xs, ys, offsets: chunkOffsets(job.plan, from, to), rows: n, hidden: H };
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

/** Finalize by scatter-add, timed as combine (tutel, megablocks, fastmoe). */
export function scatterFinalize(job: ExpertJob, rows: ExpertRows, from: number, to: number): void {
  timed(job.times, 'combine', () => scatterSlots(job, rows.ys, from, to));
}

/** Every slot of the plan in one chunk. */
export function allSlots(plan: DispatchPlan): readonly (readonly [number, number])[] {
  return [[0, plan.offsets[plan.numExperts]!]];
}
