import { addRow } from './combine.js';
import type { ExpertJob, ExpertRows, ModuleTimes } from './dispatch.js';
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
  const { x, hidden: H, plan, tokens } = job;
  const k = job.routing.k;
  for (let s = from; s < to; s++) {
    const a = plan.slots[s]!;
    const d = (s - from) * H;
    if (a < 0) dst.fill(0, d, d + H);
    else if (tokens === 1) dst.set(x, d); // x is the one token's row: no view to make (a decode step)
    else {
      const t = tokenOf(a, k);
      dst.set(x.subarray(t * H, t * H + H), d);
    }
  }
}

/** The names of a policy's gathered input and expert output buffers, made once (not per layer and step). */
export interface RowBufferNames {
  readonly in: string;
  readonly out: string;
}

export function rowBufferNames(tag: string): RowBufferNames {
  return { in: `${tag}.in`, out: `${tag}.out` };
}

/**
 * Prepare by gathering: slots [from, to) into buffers `names.in` / `names.out` [to - from, hidden] in
 * expert order. Shared by every index-based policy (dynamic, tutel, megablocks, fastmoe).
 */
export function gatherPrepare(job: ExpertJob, from: number, to: number, names: RowBufferNames): ExpertRows {
  const H = job.hidden;
  const n = to - from;
  const xs = job.buffers.get(names.in, n * H); // [n, H] tokens in expert order
  const t0 = job.now();
  gatherSlots(xs, job, from, to);
  job.times.order += job.now() - t0;
  const ys = job.buffers.get(names.out, n * H); // [n, H]
  return { xs, ys, offsets: chunkOffsets(job.plan, from, to), rows: n, hidden: H };
}

/** out[token] += w · ys[s - from] for the real slots s in [from, to): the scatter-add combine. */
export function scatterSlots(job: ExpertJob, ys: Float32Array, from: number, to: number): void {
  const { out, hidden: H, plan, routing } = job;
  const k = routing.k;
  for (let s = from; s < to; s++) {
    const a = plan.slots[s]!;
    if (a >= 0) addRow(out, tokenOf(a, k) * H, ys, (s - from) * H, routing.weights[a]!, H);
  }
}

/** Finalize by scatter-add, timed as combine (tutel, megablocks, fastmoe). */
export function scatterFinalize(job: ExpertJob, rows: ExpertRows, from: number, to: number): void {
  const t0 = job.now();
  scatterSlots(job, rows.ys, from, to);
  job.times.combine += job.now() - t0;
}
