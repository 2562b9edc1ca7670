import type { Model } from '../model/model.js';
import { loadModel } from '../model/model.js';
import type { BackendName } from '../tensor/backends.js';
import type { Backend } from '../tensor/backend.js';
import { Scratch } from '../tensor/scratch.js';
import type { DispatchPlan, DispatchPolicy, ModuleTimes } from '../moe/dispatch.js';
import { zeroTimes } from '../moe/dispatch.js';
import type { LayerStats, MoeWeights } from '../moe/moe-layer.js';
import { moeForward } from '../moe/moe-layer.js';
import type { PolicyOptions } from '../moe/policies.js';
import { dispatchPolicy } from '../moe/policies.js';
import type { Router } from '../moe/routing.js';
import type { LayerSpec } from './gating-layer.js';
import { syntheticInput, syntheticLayer } from './gating-layer.js';

/** One policy at one batch size: the row of the study's table and JSON. */
export interface GatingResult {
  policy: string;
  /** tokens in the batch */
  batch: number;
  /** null when the policy did not run (out of the memory limit) */
  tokens_per_s: number | null;
  /** activation bytes of the MoE layer (the largest over layers for a model); predicted when oom */
  peak_activation_bytes: number;
  /** assignments dropped (summed over MoE layers for a model) */
  dropped: number;
  /** padding slots computed (summed over MoE layers for a model) */
  padded: number;
  /** the policy needed more activation memory than --memory-limit allows: not run */
  oom: boolean;
  /** median run's time per FSMoE module, ms (summed over MoE layers for a model) */
  times_ms: ModuleTimes;
}

interface RunStats {
  seconds: number;
  activationBytes: number;
  dropped: number;
  padded: number;
  times: ModuleTimes;
}

/** What the study measures: a synthetic layer or a whole model, run with one policy on one batch. */
export interface GatingTarget {
  readonly description: string;
  /** activation bytes the policy will need, known before running (synthetic layer only) */
  predict?(policy: string, batch: number): number;
  run(policy: string, batch: number): Promise<RunStats>;
}

/** One synthetic MoE layer (bench shapes): every policy sees the same weights and the same inputs. */
export function layerTarget(spec: LayerSpec, backend: Backend, router: Router, opts: PolicyOptions): GatingTarget {
  const weights: MoeWeights = syntheticLayer(spec);
  const policies = new Map<string, DispatchPolicy>();
  const policy = (name: string) => policies.get(name) ?? policies.set(name, dispatchPolicy(name, opts)).get(name)!;
  const inputs = new Map<number, Float32Array>();
  const input = (batch: number) => inputs.get(batch) ?? inputs.set(batch, syntheticInput(spec, batch)).get(batch)!;
  const scratch = new Map<string, Scratch>(); // one pool per policy, so none inherits another's buffers
  const shape = { experts: spec.experts, hidden: spec.hidden, ffn: spec.ffn };
  return {
    description: `synthetic MoE layer: hidden ${spec.hidden}, ffn ${spec.ffn}, ${spec.experts} experts, top-${spec.topK}, skew ${spec.skew}, router ${router.name}`,
    predict(name, batch) {
      const x = input(batch);
      const logits = new Float32Array(batch * spec.experts);
      backend.matmul(logits, x, weights.router, batch);
      const routing = router.route({ logits, hidden: x, tokens: batch, numExperts: spec.experts, k: spec.topK, layer: 0, weights });
      return policy(name).plan(routing, shape).activationBytes;
    },
    async run(name, batch) {
      const x = input(batch);
      const out = new Float32Array(batch * spec.hidden);
      let plan: DispatchPlan | undefined;
      if (!scratch.has(name)) scratch.set(name, new Scratch());
      const ctx = { backend, scratch: scratch.get(name)!, router, policy: policy(name), observer: (_l: number, _r: unknown, p: DispatchPlan) => (plan = p) };
      const t0 = performance.now();
      const stats = moeForward(ctx, 0, weights, spec.topK, out, x, batch)!; // observed: stats measured
      const seconds = (performance.now() - t0) / 1000;
      return { seconds, activationBytes: stats.activationBytes, dropped: plan!.dropped, padded: plan!.padded, times: stats.times };
    },
  };
}

/** A checkpoint's full forward over `batch` seeded token ids (one sequence of that many positions). */
export function modelTarget(dir: string, backend: BackendName, threads: number | undefined, capacityFactor: number, router?: string): GatingTarget {
  const models = new Map<string, Model>();
  return {
    description: `model ${dir} (full forward, batch = prompt tokens)`,
    async run(name, batch) {
      let model = models.get(name);
      if (!model) {
        model = await loadModel(dir, { backend, threads, gating: name, capacityFactor, router });
        models.set(name, model);
      }
      const V = model.config.vocabSize;
      const ids = Array.from({ length: batch }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 0) % V);
      const acc: RunStats = { seconds: 0, activationBytes: 0, dropped: 0, padded: 0, times: zeroTimes() };
      const observer = (_l: number, _r: unknown, plan: DispatchPlan, stats: LayerStats) => {
        acc.activationBytes = Math.max(acc.activationBytes, stats.activationBytes);
        acc.dropped += plan.dropped;
        acc.padded += plan.padded;
        for (const m of Object.keys(acc.times) as Array<keyof ModuleTimes>) acc.times[m] += stats.times[m];
      };
      const t0 = performance.now();
      model.logits(ids, observer);
      acc.seconds = (performance.now() - t0) / 1000;
      return acc;
    },
  };
}

export interface SweepOptions {
  readonly policies: readonly string[];
  readonly batches: readonly number[];
  /** timed runs per policy and batch (the median is reported), after one warm-up run */
  readonly repeat: number;
  /** policies needing more activation bytes than this are reported as oom, not run */
  readonly memoryLimitBytes: number;
  readonly onProgress?: (msg: string) => void;
}

/**
 * The study of Huang et al. (arXiv 2303.06182, Fig. 6/7): every policy side by side on the same inputs,
 * batch by batch. Repetitions are interleaved across policies (round-robin), so a burst of load from
 * elsewhere on a shared machine hits every policy alike instead of one; the median run is reported.
 */
export async function sweep(target: GatingTarget, o: SweepOptions): Promise<GatingResult[]> {
  const results: GatingResult[] = [];
  for (const batch of o.batches) {
    const runnable: string[] = [];
    const runs = new Map<string, RunStats[]>();
    for (const policy of o.policies) {
      const need = target.predict?.(policy, batch);
      if (need !== undefined && need > o.memoryLimitBytes) {
        results.push({ policy, batch, tokens_per_s: null, peak_activation_bytes: need, dropped: 0, padded: 0, oom: true, times_ms: zeroTimes() });
        continue;
      }
      runnable.push(policy);
      runs.set(policy, []);
      await target.run(policy, batch); // warm-up: buffers allocated, pages touched, code compiled
    }
    for (let r = 0; r < o.repeat; r++) for (const policy of runnable) runs.get(policy)!.push(await target.run(policy, batch));
    for (const policy of runnable) {
      const sorted = [...runs.get(policy)!].sort((a, b) => a.seconds - b.seconds);
      const med = sorted[(sorted.length - 1) >> 1]!;
      results.push({
        policy,
        batch,
        tokens_per_s: batch / med.seconds,
        peak_activation_bytes: Math.max(...sorted.map((s) => s.activationBytes)),
        dropped: med.dropped,
        padded: med.padded,
        oom: false,
        times_ms: med.times,
      });
      o.onProgress?.(`batch ${batch} ${policy}: ${(batch / med.seconds).toFixed(0)} tokens/s`);
    }
  }
  const order = new Map(o.policies.map((p, i) => [p, i]));
  return results.sort((a, b) => a.batch - b.batch || order.get(a.policy)! - order.get(b.policy)!);
}

/** dynamic / static at one batch: throughput (higher is dynamic's gain) and peak activation memory. */
export interface GatingRatio {
  readonly batch: number;
  /** dynamic tokens/s over static tokens/s; null where either did not run (OOM) */
  readonly throughput: number | null;
  /** static peak activation bytes over dynamic's (predicted where static was OOM) */
  readonly memory: number;
}

/**
 * The paper's two comparisons (Huang et al., arXiv 2303.06182, Fig. 6/7) at every batch where both
 * policies appear, not only the largest: the gain depends on the batch, and a single figure taken at
 * one end of the sweep hides that.
 */
export function dynamicOverStatic(results: readonly GatingResult[]): GatingRatio[] {
  const at = (p: string, b: number) => results.find((r) => r.policy === p && r.batch === b);
  const batches = [...new Set(results.map((r) => r.batch))].sort((a, b) => a - b);
  const out: GatingRatio[] = [];
  for (const batch of batches) {
    const d = at('dynamic', batch);
    const s = at('static', batch);
    if (!d || !s) continue;
    const throughput = d.tokens_per_s && s.tokens_per_s ? d.tokens_per_s / s.tokens_per_s : null;
    out.push({ batch, throughput, memory: s.peak_activation_bytes / d.peak_activation_bytes });
  }
  return out;
}
