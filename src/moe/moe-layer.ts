import type { Backend } from '../tensor/backend.js';
import type { Weight } from '../tensor/weight.js';
import type { Buffers } from './buffers.js';
import { MeteredBuffers } from './buffers.js';
import type { DispatchPlan, DispatchPolicy, ModuleTimes } from './dispatch.js';
import { zeroTimes } from './dispatch.js';
import { timed } from './dispatch-exec.js';
import type { Router, RouterWeights, Routing } from './routing.js';
import type { SwiGluWeights } from './swiglu.js';
import { swiglu } from './swiglu.js';

export interface MoeWeights extends RouterWeights {
  readonly experts: readonly SwiGluWeights[];
  /** Qwen2-MoE's always-on shared expert, scaled by sigmoid(sharedGate · x). */
  readonly shared?: SwiGluWeights;
  /** [1, hidden] */
  readonly sharedGate?: Weight;
}

/** What one MoE layer did for one batch, beyond its output. */
export interface LayerStats {
  /** gate / order / expert / combine wall time, ms */
  readonly times: ModuleTimes;
  /** activation bytes the routed part of the layer asked for (measured; equals plan.activationBytes) */
  readonly activationBytes: number;
}

/** Sees every routing decision (trace recording, statistics), after the layer has run. */
export type RoutingObserver = (layer: number, routing: Routing, plan: DispatchPlan, stats: LayerStats) => void;

export interface MoeContext {
  readonly backend: Backend;
  /** the model's reusable buffers (a Scratch) */
  readonly scratch: Buffers;
  readonly router: Router;
  readonly policy: DispatchPolicy;
  readonly observer?: RoutingObserver;
}

/**
 * One MoE FFN as FSMoE's modules (Pan et al., arXiv 2501.10714): Gate (router product + routing
 * function) -> Order (the policy's plan) -> the policy's execution (dispatch, expert products,
 * combine) -> the shared expert, if any. The layer knows nothing of any particular router or policy.
 * `k` is the config's experts per token; a router may use another (Switch: 1), the routing says which.
 */
export function moeForward(
  ctx: MoeContext,
  layer: number,
  w: MoeWeights,
  k: number,
  out: Float32Array, // [tokens, hidden]
  x: Float32Array, // [tokens, hidden]
  tokens: number,
): LayerStats {
  const { backend } = ctx;
  const buffers = new MeteredBuffers(ctx.scratch);
  const times = zeroTimes();
  const numExperts = w.router.shape[0]!;
  const hidden = w.router.shape[1]!;
  const ffn = w.experts[0]!.gate.shape[0]!;
  const routing = timed(times, 'gate', () => {
    const logits = buffers.get('moe.router', tokens * numExperts); // [tokens, experts]
    backend.matmul(logits, x, w.router, tokens);
    return ctx.router.route({ logits, hidden: x, tokens, numExperts, k, layer, weights: w });
  });
  const plan = timed(times, 'order', () => ctx.policy.plan(routing, { experts: numExperts, hidden, ffn }));
  ctx.policy.execute({ backend, buffers, routing, plan, x, out, tokens, hidden, experts: w.experts, times });
  const indexBytes = routing.experts.byteLength + routing.weights.byteLength + plan.offsets.byteLength + plan.counts.byteLength + plan.slots.byteLength + plan.slotOf.byteLength;
  const stats: LayerStats = { times, activationBytes: buffers.bytes + indexBytes };

  if (w.shared && w.sharedGate) {
    const ys = ctx.scratch.get('moe.shared', tokens * hidden); // [tokens, hidden]
    swiglu(backend, ctx.scratch, 'moe.shared', ys, x, tokens, w.shared);
    const g = ctx.scratch.get('moe.sharedGate', tokens); // [tokens, 1]
    backend.matmul(g, x, w.sharedGate, tokens);
    for (let t = 0; t < tokens; t++) {
      const s = 1 / (1 + Math.exp(-g[t]!));
      for (let i = 0; i < hidden; i++) out[t * hidden + i]! += s * ys[t * hidden + i]!;
    }
  }
  ctx.observer?.(layer, routing, plan, stats);
  return stats;
}
