import type { DispatchPlan, DispatchPolicy, LayerShape } from './dispatch.js';
import { buildPlan, groupedBytes } from './dispatch.js';
import { exactGroups } from './dispatch-dynamic.js';
import { paddedStages } from './dispatch-padded.js';
import type { Routing } from './routing.js';

/**
 * Tutel (Hwang et al., arXiv 2206.03382) with its adaptive capacity: per batch, the capacity is the
 * largest actual expert count, so nothing is dropped, but every expert's buffer is padded to that
 * maximum and all E fixed-shape buffers are computed (an [E, cap, hidden] batched product). Dispatch
 * and combine are index-based (Tutel's fast kernels), not the dense einsum of static gating.
 */
export const tutelDispatch: DispatchPolicy = {
  name: 'tutel',
  dropless: true,
  plan(routing: Routing, shape: LayerShape): DispatchPlan {
    const { counts, groups } = exactGroups(routing, shape.experts);
    const cap = Math.max(1, ...counts);
    const padded = groups.map((g) => {
      const p = new Int32Array(cap).fill(-1);
      p.set(g);
      return p;
    });
    return buildPlan(routing, shape, counts, padded, cap, (rows, largest) => groupedBytes(rows, largest, shape));
  },
  ...paddedStages,
};
