import type { Backend } from '../tensor/backend.js';
import type { Buffers } from './buffers.js';
import type { Routing } from './routing.js';

/** The sizes a plan's memory depends on. */
export interface LayerShape {
  readonly experts: number;
  readonly hidden: number;
  /** each expert's FFN width */
  readonly ffn: number;
}

/**
 * Wall time of one MoE layer split into FSMoE's modules (Pan et al., arXiv 2501.10714): gate (router
 * product + routing function), order (plan + layout of tokens into expert buffers: the dispatch),
 * exchange (moving rows between ranks, in Prepare and Finalize; 0 in one process), expert (the
 * products), combine (weighted sum back in token order: the I-Order + combine). Milliseconds.
 */
export interface ModuleTimes {
  gate: number;
  order: number;
  exchange: number;
  expert: number;
  combine: number;
}

export function zeroTimes(): ModuleTimes {
  return { gate: 0, order: 0, exchange: 0, expert: 0, combine: 0 };
}

/**
 * How a batch's assignments are laid out for the expert products (Huang et al., "Towards MoE
 * Deployment", arXiv 2303.06182, §dynamic gating). Expert e owns slots [offsets[e], offsets[e+1]);
 * each slot holds an assignment index (token*k + j) or -1 for a padding slot that is computed but
 * thrown away. Assignments in no slot are dropped: their tokens keep only the residual and the other
 * experts' share (weights are not renormalised: the policy changes the output by its drops only).
 */
export interface DispatchPlan {
  readonly numExperts: number;
  /** [numExperts + 1] */
  readonly offsets: Int32Array;
  /** [offsets[numExperts]] assignment index per slot, -1 = padding */
  readonly slots: Int32Array;
  /** [tokens * k] slot of each assignment, -1 = dropped or an empty routing slot (the inverse permutation) */
  readonly slotOf: Int32Array;
  /** real assignments per expert before capacity: the exact counts */
  readonly counts: Int32Array;
  /** slots per expert when fixed (static, tutel), 0 when each expert has exactly its own (possibly rounded) count */
  readonly capacity: number;
  readonly dropped: number;
  readonly padded: number;
  /**
   * Bytes of activation memory the layer allocates for this batch under this plan: router logits,
   * the routing and plan index arrays, the expert input/output buffers, the SwiGLU intermediates and
   * any policy-specific tensors (static's dispatch/combine masks). Known before execution, so a caller
   * can refuse a batch that would not fit (the paper's out-of-memory points); test/unit/dispatch
   * checks it equals what execution actually asks for.
   */
  readonly activationBytes: number;
}

/** What a policy's Prepare and Finalize work on: one layer, one batch. */
export interface ExpertJob {
  /** the model layer (an expert-parallel policy looks up which rank holds each expert) */
  readonly layer?: number;
  readonly backend: Backend;
  readonly buffers: Buffers;
  readonly routing: Routing;
  readonly plan: DispatchPlan;
  /** [tokens, hidden] */
  readonly x: Float32Array;
  /** [tokens, hidden] zeroed by the layer, then accumulated by Finalize: Σ_j w[t,j] · expert_j(x[t]) */
  readonly out: Float32Array;
  readonly tokens: number;
  readonly hidden: number;
  /** the policy adds its order / exchange / combine time here, read from `now` */
  readonly times: ModuleTimes;
  /** the stage clock, ms: performance.now() while the layer is observed, else always 0 (no clock read) */
  readonly now: () => number;
}

/**
 * Rows in the per-expert layout, the Experts stage's input and output: rows [offsets[e],
 * offsets[e+1]) of xs go through global expert e into the same rows of ys. Under expert parallelism
 * these are the rows a rank received for its own experts, not the rows of its own tokens.
 */
export interface ExpertRows {
  /** [rows, hidden] */
  readonly xs: Float32Array;
  /** [rows, hidden] */
  readonly ys: Float32Array;
  /** [numExperts + 1] */
  readonly offsets: Int32Array;
  readonly rows: number;
  readonly hidden: number;
}

/**
 * A gating/dispatch policy: the stages Plan, Prepare and Finalize of the MoE layer (Router -> Plan ->
 * Prepare -> Experts -> Finalize, as vLLM's modular kernel and FSMoE's modules split it). One file per
 * policy, registered in policies.ts. A policy never runs the expert products itself: the layer runs
 * the Experts stage between its Prepare and Finalize, once per chunk of slots.
 */
export interface DispatchPolicy {
  readonly name: string;
  /** never drops an assignment whatever the batch (all but static) */
  readonly dropless: boolean;
  plan(routing: Routing, shape: LayerShape): DispatchPlan;
  /** slot ranges [from, to) that go through Prepare -> Experts -> Finalize one after another (default: one, all slots) */
  chunks?(plan: DispatchPlan): readonly (readonly [number, number])[];
  /** Prepare: the rows of slots [from, to) in the per-expert layout (the dispatch; an exchange between ranks goes here) */
  prepare(job: ExpertJob, from: number, to: number): ExpertRows;
  /** Finalize: the weighted combine of `rows.ys` (slots [from, to)) into job.out */
  finalize(job: ExpertJob, rows: ExpertRows, from: number, to: number): void;
}

/** Offsets of slots [from, to) per expert, relative to `from`: the layout of one chunk's rows. */
export function chunkOffsets(plan: DispatchPlan, from: number, to: number): Int32Array {
  if (from === 0 && to === plan.offsets[plan.numExperts]) return plan.offsets;
  const o = new Int32Array(plan.numExperts + 1);
  for (let e = 0; e <= plan.numExperts; e++) o[e] = Math.min(to, Math.max(from, plan.offsets[e]!)) - from;
  return o;
}

/** Exact per-expert counts (the `bincount` of dynamic gating); empty routing slots (-1) are skipped. */
export function expertCounts(routing: Routing, numExperts: number): Int32Array {
  const counts = new Int32Array(numExperts);
  const experts = routing.experts;
  for (let a = 0; a < experts.length; a++) if (experts[a]! >= 0) counts[experts[a]!]!++;
  return counts;
}

/** Bytes every plan has: router logits [T, E], the routing arrays, offsets, counts, slotOf. */
export function baseBytes(routing: Routing, shape: LayerShape): number {
  const a = routing.tokens * routing.k;
  return 4 * routing.tokens * shape.experts + 8 * a + 4 * (2 * shape.experts + 1) + 4 * a;
}

/**
 * Bytes of a grouped expert product over `rows` slot rows: the gathered input and the output
 * [rows, hidden] each, plus the SwiGLU intermediate silu(x·gateᵀ)·(x·upᵀ) [rows, ffn] (one buffer:
 * the backend's fused swiGlu) sized to the largest group, since the groups run one after another
 * through it. Must follow swiglu.ts: test/unit/dispatch.test.ts compares it with what execution asks for.
 */
export function groupedBytes(rows: number, largestGroup: number, shape: LayerShape): number {
  return 4 * (2 * rows * shape.hidden + actRows(rows, largestGroup) * shape.ffn);
}

/**
 * The Experts stage hands the kernels several experts per call (one call for a whole decode step),
 * packing experts until their rows would pass this many (an expert larger than that goes alone), so
 * the activation buffer stays bounded during a long prefill.
 */
export const GROUPED_ROWS = 256;

/** Rows of the Experts stage's activation buffer ([rows, ffn]) for `rows` slots whose largest expert group has `largestGroup`. */
export function actRows(rows: number, largestGroup: number): number {
  return Math.min(rows, Math.max(largestGroup, GROUPED_ROWS));
}

/** A plan from per-expert slot lists: fills offsets, slots and slotOf (shared by every policy). */
export function buildPlan(
  routing: Routing,
  shape: LayerShape,
  counts: Int32Array,
  groups: readonly Int32Array[], // per expert: its slots' assignment indices, -1 = padding
  capacity: number,
  extraBytes: (rows: number, largestGroup: number) => number,
): DispatchPlan {
  const E = shape.experts;
  const offsets = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + groups[e]!.length;
  const slots = new Int32Array(offsets[E]!);
  for (let e = 0; e < E; e++) slots.set(groups[e]!, offsets[e]!);
  return planFromSlots(routing, shape, counts, offsets, slots, capacity, extraBytes);
}

/**
 * A plan from its slot layout (expert e owns slots [offsets[e], offsets[e+1]) of `slots`): fills slotOf,
 * the drop and padding counts and the activation bytes. Policies whose layout comes out of one sort
 * (dynamic) hand it over as it is, without per-expert lists.
 */
export function planFromSlots(
  routing: Routing,
  shape: LayerShape,
  counts: Int32Array,
  offsets: Int32Array, // [experts + 1]
  slots: Int32Array, // [offsets[experts]] assignment index per slot, -1 = padding
  capacity: number,
  extraBytes: (rows: number, largestGroup: number) => number,
): DispatchPlan {
  const E = shape.experts;
  let largest = 0;
  for (let e = 0; e < E; e++) largest = Math.max(largest, offsets[e + 1]! - offsets[e]!);
  const rows = offsets[E]!;
  const slotOf = new Int32Array(routing.experts.length).fill(-1);
  let placed = 0;
  for (let s = 0; s < rows; s++) {
    const a = slots[s]!;
    if (a >= 0) {
      slotOf[a] = s;
      placed++;
    }
  }
  let real = 0;
  for (let e = 0; e < E; e++) real += counts[e]!;
  return {
    numExperts: E,
    offsets,
    slots,
    slotOf,
    counts,
    capacity,
    dropped: real - placed,
    padded: rows - placed,
    activationBytes: baseBytes(routing, shape) + 4 * rows + extraBytes(rows, largest),
  };
}
