import type { Backend } from '../tensor/backend.js';
import type { Scratch } from '../tensor/scratch.js';
import type { Weight } from '../tensor/weight.js';
import type { DispatchPlan, DispatchPolicy } from './dispatch.js';
import type { Router, Routing } from './routing.js';
import type { SwiGluWeights } from './swiglu.js';
import { swiglu } from './swiglu.js';

export interface MoeWeights {
  /** [experts, hidden] */
  readonly router: Weight;
  readonly experts: readonly SwiGluWeights[];
  /** Qwen2-MoE's always-on shared expert, scaled by sigmoid(sharedGate · x). */
  readonly shared?: SwiGluWeights;
  /** [1, hidden] */
  readonly sharedGate?: Weight;
}

/** Sees every routing decision (trace recording, statistics). */
export type RoutingObserver = (layer: number, routing: Routing, plan: DispatchPlan) => void;

export interface MoeContext {
  readonly backend: Backend;
  readonly scratch: Scratch;
  readonly router: Router;
  readonly policy: DispatchPolicy;
  readonly observer?: RoutingObserver;
}

/**
 * One MoE FFN: Router -> DispatchPolicy (plan) -> Experts (one grouped product per expert over
 * exactly its slots) -> Combine (weighted scatter-add back to token order). The layer knows nothing
 * of any particular policy: padding slots (-1) are computed on zeros and discarded, dropped
 * assignments simply have no slot.
 */
export function moeForward(
  ctx: MoeContext,
  layer: number,
  w: MoeWeights,
  k: number,
  out: Float32Array, // [tokens, hidden]
  x: Float32Array, // [tokens, hidden]
  tokens: number,
): void {
  const { backend, scratch } = ctx;
  const numExperts = w.router.shape[0]!;
  const hidden = w.router.shape[1]!;
  const logits = scratch.get('moe.router', tokens * numExperts); // [tokens, experts]
  backend.matmul(logits, x, w.router, tokens);
  const routing = ctx.router.route(logits, tokens, numExperts, k);
  const plan = ctx.policy.plan(routing, numExperts);
  ctx.observer?.(layer, routing, plan);

  out.fill(0, 0, tokens * hidden);
  for (let e = 0; e < numExperts; e++) {
    const first = plan.offsets[e]!;
    const n = plan.offsets[e + 1]! - first;
    if (n === 0) continue;
    const xs = scratch.get('moe.in', n * hidden); // [n, hidden] gathered tokens of expert e
    for (let s = 0; s < n; s++) {
      const a = plan.slots[first + s]!;
      if (a < 0) xs.fill(0, s * hidden, (s + 1) * hidden);
      else xs.set(x.subarray(((a / k) | 0) * hidden, ((a / k) | 0) * hidden + hidden), s * hidden);
    }
    const ys = scratch.get('moe.out', n * hidden); // [n, hidden]
    swiglu(backend, scratch, 'moe.expert', ys, xs, n, w.experts[e]!);
    for (let s = 0; s < n; s++) {
      const a = plan.slots[first + s]!;
      if (a < 0) continue;
      const wt = routing.weights[a]!;
      const o = ((a / k) | 0) * hidden;
      for (let i = 0; i < hidden; i++) out[o + i]! += wt * ys[s * hidden + i]!;
    }
  }

  if (w.shared && w.sharedGate) {
    const ys = scratch.get('moe.shared', tokens * hidden); // [tokens, hidden]
    swiglu(backend, scratch, 'moe.shared', ys, x, tokens, w.shared);
    const g = scratch.get('moe.sharedGate', tokens); // [tokens, 1]
    backend.matmul(g, x, w.sharedGate, tokens);
    for (let t = 0; t < tokens; t++) {
      const s = 1 / (1 + Math.exp(-g[t]!));
      for (let i = 0; i < hidden; i++) out[t * hidden + i]! += s * ys[t * hidden + i]!;
    }
  }
}
