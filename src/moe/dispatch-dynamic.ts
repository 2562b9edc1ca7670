import type { DispatchPlan, DispatchPolicy } from './dispatch.js';
import { expertCounts } from './dispatch.js';

/**
 * Dynamic gating (Huang et al., "Towards MoE Deployment", arXiv 2303.06182): sort the assignments by
 * expert id, take exact counts, and give each expert exactly its tokens: no capacity, no drops, no
 * padding. The sort is a stable counting sort, O(T·k + E), which is what the paper's argsort amounts
 * to when keys are small integers; the combine restores token order through the slot -> assignment map.
 */
export const dynamicDispatch: DispatchPolicy = {
  name: 'dynamic',
  plan(routing, numExperts): DispatchPlan {
    const counts = expertCounts(routing, numExperts);
    const offsets = new Int32Array(numExperts + 1);
    for (let e = 0; e < numExperts; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
    const cursor = offsets.slice(0, numExperts);
    const slots = new Int32Array(routing.experts.length);
    for (let a = 0; a < routing.experts.length; a++) slots[cursor[routing.experts[a]!]!++] = a;
    return { numExperts, offsets, slots, counts, dropped: 0, padded: 0 };
  },
};
