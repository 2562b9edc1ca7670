import type { DispatchPlan, DispatchPolicy, ExpertJob, ExpertRows, LayerShape } from './dispatch.js';
import { expertCounts, groupedBytes, planFromSlots } from './dispatch.js';
import { combineTokenOrder } from './combine.js';
import { gatherPrepare, rowBufferNames } from './dispatch-exec.js';
import type { Routing } from './routing.js';

const ROWS = rowBufferNames('moe');

/**
 * The assignments sorted by expert id, stably (each expert's in token order): a counting sort,
 * O(T·k + E), which is what the paper's argsort amounts to when keys are small integers. Expert e's
 * assignments are sorted[offsets[e] .. offsets[e+1]); empty routing slots (-1) are left out.
 */
export function exactOrder(routing: Routing, E: number): { counts: Int32Array; offsets: Int32Array; sorted: Int32Array } {
  const counts = expertCounts(routing, E);
  const offsets = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const cursor = offsets.slice(0, E);
  const sorted = new Int32Array(offsets[E]!); // [assignments] sorted by expert: the dispatch permutation
  const experts = routing.experts;
  for (let a = 0; a < experts.length; a++) {
    const e = experts[a]!;
    if (e >= 0) sorted[cursor[e]!++] = a;
  }
  return { counts, offsets, sorted };
}

/** exactOrder as one list per expert, for the policies that pad or split the groups (tutel, megablocks, fastmoe). */
export function exactGroups(routing: Routing, E: number): { counts: Int32Array; groups: Int32Array[] } {
  const { counts, offsets, sorted } = exactOrder(routing, E);
  const groups = Array.from({ length: E }, (_, e) => sorted.subarray(offsets[e]!, offsets[e + 1]!));
  return { counts, groups };
}

/**
 * Dynamic gating (Huang et al., "Towards MoE Deployment", arXiv 2303.06182, §4): sort the assignments
 * by expert id, take exact counts, reorder the tokens by that permutation into one buffer of exactly
 * T·k rows, run one grouped product with no capacity, no drops and no padding, and combine in token
 * order through the inverse permutation (slotOf), so each output row is written once.
 */
export const dynamicDispatch: DispatchPolicy = {
  name: 'dynamic',
  dropless: true,
  plan(routing: Routing, shape: LayerShape): DispatchPlan {
    // the sorted permutation is the slot layout itself: no padding, no per-expert lists
    const { counts, offsets, sorted } = exactOrder(routing, shape.experts);
    return planFromSlots(routing, shape, counts, offsets, sorted, 0, (rows, largest) => groupedBytes(rows, largest, shape));
  },
  prepare: (job, from, to) => gatherPrepare(job, from, to, ROWS),
  finalize(job: ExpertJob, rows: ExpertRows): void {
    const t0 = job.now();
    combineTokenOrder(job.out, rows.ys, job.routing, job.plan, job.tokens, job.hidden);
    job.times.combine += job.now() - t0;
  },
};
