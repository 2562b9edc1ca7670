import type { DispatchPlan, DispatchPolicy, ExpertJob, ExpertRows, LayerShape } from './dispatch.js';
import { buildPlan, expertCounts, groupedBytes } from './dispatch.js';
import { gatherPrepare, timed } from './dispatch-exec.js';
import type { Routing } from './routing.js';

/**
 * Each expert's assignments in token order, exactly: a stable counting sort by expert id, O(T·k + E),
 * which is what the paper's argsort amounts to when keys are small integers. Shared by the dropless
 * policies that differ only in how they pad or run the groups.
 */
export function exactGroups(routing: Routing, E: number): { counts: Int32Array; groups: Int32Array[] } {
  const counts = expertCounts(routing, E);
  const offsets = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const cursor = offsets.slice(0, E);
  const sorted = new Int32Array(offsets[E]!); // [assignments] sorted by expert: the dispatch permutation
  routing.experts.forEach((e, a) => {
    if (e >= 0) sorted[cursor[e]!++] = a;
  });
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
    const { counts, groups } = exactGroups(routing, shape.experts);
    return buildPlan(routing, shape, counts, groups, 0, (rows, largest) => groupedBytes(rows, largest, shape));
  },
  prepare: (job, from, to) => gatherPrepare(job, from, to, 'moe'),
  finalize(job: ExpertJob, rows: ExpertRows): void {
    const { plan, hidden: H, routing, out, times } = job;
    const ys = rows.ys;
    timed(times, 'combine', () => {
      const k = routing.k;
      for (let t = 0; t < job.tokens; t++) {
        const o = t * H;
        for (let j = 0; j < k; j++) {
          const s = plan.slotOf[t * k + j]!;
          if (s < 0) continue;
          const w = routing.weights[t * k + j]!;
          for (let i = 0; i < H; i++) out[o + i]! += w * ys[s * H + i]!;
        }
      }
    });
  },
};
