import type { DispatchPlan, DispatchPolicy, LayerShape } from './dispatch.js';
import { buildPlan, groupedBytes } from './dispatch.js';
import { gatherPrepare, rowBufferNames, scatterFinalize } from './dispatch-exec.js';
import { exactGroups } from './dispatch-dynamic.js';
import type { Routing } from './routing.js';

const ROWS = rowBufferNames('moe.fastmoe');

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
  /** one chunk per expert with tokens: gather, product and scatter-add run expert by expert */
  chunks(plan: DispatchPlan): readonly (readonly [number, number])[] {
    const chunks: [number, number][] = [];
    for (let e = 0; e < plan.numExperts; e++) if (plan.offsets[e + 1]! > plan.offsets[e]!) chunks.push([plan.offsets[e]!, plan.offsets[e + 1]!]);
    return chunks;
  },
  prepare: (job, from, to) => gatherPrepare(job, from, to, ROWS),
  finalize: scatterFinalize,
};
