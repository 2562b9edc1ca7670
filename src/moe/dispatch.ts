import type { Routing } from './routing.js';

/**
 * How a batch's assignments are laid out for the expert products (Huang et al., "Towards MoE
 * Deployment", §dynamic gating). Expert e owns slots [offsets[e], offsets[e+1]); each slot holds an
 * assignment index (token*k + j) or -1 for a padding slot that is computed but thrown away.
 * Assignments in no slot are dropped: their tokens keep only the residual and the other experts' share.
 */
export interface DispatchPlan {
  readonly numExperts: number;
  /** [numExperts + 1] */
  readonly offsets: Int32Array;
  /** [offsets[numExperts]] assignment index per slot, -1 = padding */
  readonly slots: Int32Array;
  /** real tokens per expert before capacity: the exact counts */
  readonly counts: Int32Array;
  readonly dropped: number;
  readonly padded: number;
}

/** A gating/dispatch policy: routing -> plan. One file per policy; the MoE layer executes any plan. */
export interface DispatchPolicy {
  readonly name: string;
  plan(routing: Routing, numExperts: number): DispatchPlan;
}

/** Exact per-expert counts (the `bincount` of dynamic gating). */
export function expertCounts(routing: Routing, numExperts: number): Int32Array {
  const counts = new Int32Array(numExperts);
  for (const e of routing.experts) counts[e]!++;
  return counts;
}
