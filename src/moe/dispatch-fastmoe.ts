import type { DispatchPlan, DispatchPolicy, ExpertJob, LayerShape } from './dispatch.js';
import { buildPlan, groupedBytes } from './dispatch.js';
import { gatherSlots, scatterSlots, timed } from './dispatch-exec.js';
import { exactGroups } from './dispatch-dynamic.js';
import type { Routing } from './routing.js';
import { swiglu } from './swiglu.js';

/**
 * FastMoE (He et al., arXiv 2103.13262) as the paper's baseline: no capacity; a loop over experts,
 * each gathering exactly its tokens into its own buffer, running one product over them and
 * scatter-adding the result. Dropless and unpadded like dynamic gating, but one dispatch/combine per
 * expert instead of one permutation for the batch; its buffers only ever hold the largest expert's rows.
 */
export const fastmoeDispatch: DispatchPolicy = {
  name: 'fastmoe',
  dropless: true,
  plan(routing: Routing, shape: LayerShape): DispatchPlan {
    const { counts, groups } = exactGroups(routing, shape.experts);
    return buildPlan(routing, shape, counts, groups, 0, (_rows, largest) => groupedBytes(largest, largest, shape));
  },
  execute(job: ExpertJob): void {
    const { plan, hidden: H, buffers, out, times } = job;
    out.fill(0, 0, job.tokens * H);
    for (let e = 0; e < plan.numExperts; e++) {
      const from = plan.offsets[e]!;
      const n = plan.offsets[e + 1]! - from;
      if (n === 0) continue;
      const xs = buffers.get('moe.fastmoe.in', n * H); // [n, H] expert e's tokens
      timed(times, 'order', () => gatherSlots(xs, job, from, from + n));
      const ys = buffers.get('moe.fastmoe.out', n * H); // [n, H]
      timed(times, 'expert', () => swiglu(job.backend, buffers, 'moe.expert', ys, xs, n, job.experts[e]!));
      timed(times, 'combine', () => scatterSlots(job, ys, from, from + n));
    }
  },
};
