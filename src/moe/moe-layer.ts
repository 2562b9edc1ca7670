import type { Backend } from '../tensor/backend.js';
import type { Weight } from '../tensor/weight.js';
import type { Buffers } from './buffers.js';
import { MeteredBuffers } from './buffers.js';
import { addRow } from './combine.js';
import type { DispatchPlan, DispatchPolicy, ExpertJob, ModuleTimes } from './dispatch.js';
import { zeroTimes } from './dispatch.js';
import type { ExpertProvider } from './expert-provider.js';
import { MappedExperts } from './expert-provider.js';
import { runExperts } from './experts-stage.js';
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

/**
 * Sees each layer's routing decisions and nothing else (a server's metrics and routing trace): cheap
 * enough that the fused decode step reports to it too, where an observer's plan and stage times send a
 * step down the per-op path. The routing is valid during the call only.
 */
export type RoutingListener = (layer: number, routing: Routing) => void;

export interface MoeContext {
  readonly backend: Backend;
  /** the model's reusable buffers (a Scratch) */
  readonly scratch: Buffers;
  readonly router: Router;
  readonly policy: DispatchPolicy;
  /** where expert weights come from (default: the layer's own resolved weights, `w.experts`) */
  readonly experts?: ExpertProvider;
  readonly observer?: RoutingObserver;
  readonly onRouting?: RoutingListener;
  /** a decode-only step (each sequence's next token): routers may select experts batch-wide (Lynx) */
  readonly decode?: boolean;
}

/**
 * One MoE FFN in stages (vLLM's modular kernel; FSMoE's modules, Pan et al., arXiv 2501.10714):
 * Router (router product + routing function) -> Plan (the policy's order) -> the provider's hook ->
 * per chunk of slots: Prepare (rows into the per-expert layout) -> Experts (grouped products, weights
 * from the ExpertProvider) -> Finalize (weighted combine) -> the shared expert, if any. The layer knows
 * nothing of any particular router, policy or provider.
 * `k` is the config's experts per token; a router may use another (Switch: 1), the routing says which.
 * Returns what the observer was given (undefined without an observer: nothing was measured).
 */
export function moeForward(
  ctx: MoeContext,
  layer: number,
  w: MoeWeights,
  k: number,
  out: Float32Array, // [tokens, hidden]
  x: Float32Array, // [tokens, hidden]
  tokens: number,
): LayerStats | undefined {
  const { backend, policy, observer } = ctx;
  // the stage times and activation bytes are measured only for an observer, their one reader: an
  // unobserved layer (a plain decode step) reads no clock and meters no buffer
  const metered = observer ? new MeteredBuffers(ctx.scratch) : undefined;
  const buffers: Buffers = metered ?? ctx.scratch;
  const now = observer ? readClock : noClock;
  const times = zeroTimes();
  const numExperts = w.router.shape[0]!;
  const hidden = w.router.shape[1]!;
  const ffn = w.experts[0]!.gate.shape[0]!;
  const provider: ExpertProvider = ctx.experts ?? new MappedExperts([w.experts]);
  const providerLayer = ctx.experts ? layer : 0;
  // clock reads in line, one read ending a stage and starting the next (a closure per timed stage
  // cost more than some of the stages it timed in a decode step)
  const t0 = now();
  // Router
  const logits = buffers.get('moe.router', tokens * numExperts); // [tokens, experts]
  backend.matmul(logits, x, w.router, tokens);
  const routing = ctx.router.route({ logits, hidden: x, tokens, numExperts, k, layer, weights: w, decode: ctx.decode });
  ctx.onRouting?.(layer, routing);
  const t1 = now();
  times.gate += t1 - t0;
  // Plan
  const plan = policy.plan(routing, { experts: numExperts, hidden, ffn });
  times.order += now() - t1;
  if (provider.beginLayer) provider.beginLayer(providerLayer, activeExperts(plan));
  // Prepare -> Experts -> Finalize, chunk by chunk (one chunk of all slots unless the policy splits them)
  const job: ExpertJob = { layer, backend, buffers, routing, plan, x, out, tokens, hidden, times, now };
  out.fill(0, 0, tokens * hidden);
  if (policy.chunks) for (const [from, to] of policy.chunks(plan)) runChunk(job, policy, provider, providerLayer, from, to);
  else runChunk(job, policy, provider, providerLayer, 0, plan.offsets[numExperts]!);
  provider.endLayer?.(providerLayer, x, tokens);
  if (w.shared && w.sharedGate) {
    const ys = ctx.scratch.get('moe.shared', tokens * hidden); // [tokens, hidden]
    swiglu(backend, ctx.scratch, 'moe.shared', ys, x, tokens, w.shared);
    const g = ctx.scratch.get('moe.sharedGate', tokens); // [tokens, 1]
    backend.matmul(g, x, w.sharedGate, tokens);
    for (let t = 0; t < tokens; t++) addRow(out, t * hidden, ys, t * hidden, 1 / (1 + Math.exp(-g[t]!)), hidden);
  }
  if (!observer || !metered) return undefined;
  const indexBytes = routing.experts.byteLength + routing.weights.byteLength + plan.offsets.byteLength + plan.counts.byteLength + plan.slots.byteLength + plan.slotOf.byteLength;
  const stats: LayerStats = { times, activationBytes: metered.bytes + indexBytes };
  observer(layer, routing, plan, stats);
  return stats;
}

/** The stage clock while the layer is observed (ms). */
const readClock = (): number => performance.now();

/** The stage clock of an unobserved layer: no clock read, every stage time 0. */
const noClock = (): number => 0;

/** Prepare -> Experts -> Finalize over slots [from, to). */
function runChunk(job: ExpertJob, policy: DispatchPolicy, provider: ExpertProvider, providerLayer: number, from: number, to: number): void {
  const rows = policy.prepare(job, from, to);
  const t0 = job.now();
  runExperts(provider, providerLayer, rows, job.backend, job.buffers);
  job.times.expert += job.now() - t0;
  policy.finalize(job, rows, from, to);
}

/** Experts with at least one slot in the plan, ascending: what a provider's beginLayer hook is told. */
function activeExperts(plan: DispatchPlan): number[] {
  const active: number[] = [];
  for (let e = 0; e < plan.numExperts; e++) if (plan.offsets[e + 1]! > plan.offsets[e]!) active.push(e);
  return active;
}
