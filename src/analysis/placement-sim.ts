import { fail } from '../errors.js';
import { checkDevices, fitEnd, fitLayerPlacement, type PlacementPolicy } from '../parallel/placement.js';
import type { LayerActivity, TraceActivity } from '../trace/activity.js';

/**
 * Trace-driven evaluation of expert placement (techniques.md §3, Huang et al., arXiv
 * 2303.06182 §5). Per MoE layer the placement is fitted on the first half of the steps and measured on
 * the second, as in the paper. A step's share for device n = (assignments to experts on n) / (T·k).
 * Max Load = the largest share over test steps and devices (the out-of-memory risk); Avg Max Load =
 * the mean over test steps of the largest device share (the straggler cost).
 *
 * Choices the paper leaves open: a layer's steps are the steps with a record of at least one token for
 * that layer (a normal trace has every layer at every step); with S such steps the first floor(S/2) fit
 * and the remaining ceil(S/2) are measured, so a layer needs at least 2 steps.
 */
export interface LoadMetrics {
  max_load: number;
  avg_max_load: number;
}

export interface PlacementResult extends LoadMetrics {
  per_layer: Record<string, LoadMetrics>;
}

/** Max Load and Avg Max Load of a placement over steps [from, to) of one layer. */
export function evaluateLoad(act: LayerActivity, deviceOf: Int32Array, D: number, k: number, from: number, to: number): LoadMetrics {
  const load = new Float64Array(D); // [D] assignments per device at one step
  let maxLoad = 0;
  let sumMax = 0;
  for (let i = from; i < to; i++) {
    load.fill(0);
    for (let p = act.offsets[i]; p < act.offsets[i + 1]; p++) load[deviceOf[act.experts[p]]] += act.counts[p];
    let top = 0;
    for (let n = 0; n < D; n++) if (load[n] > top) top = load[n];
    const share = top / (act.tokens[i] * k);
    sumMax += share;
    if (share > maxLoad) maxLoad = share;
  }
  return { max_load: maxLoad, avg_max_load: to > from ? sumMax / (to - from) : 0 };
}

/** Fits and evaluates every MoE layer; the overall figures are the means over layers. */
export function simulatePlacement(activity: TraceActivity, D: number, policy: PlacementPolicy): PlacementResult & { placements: Record<string, number[]> } {
  const { num_experts: E, top_k: k } = activity.header;
  checkDevices(E, D);
  const per_layer: Record<string, LoadMetrics> = {};
  const placements: Record<string, number[]> = {};
  let sumMax = 0;
  let sumAvg = 0;
  for (const act of activity.layers) {
    const S = act.steps.length;
    if (S < 2) {
      fail('E_BAD_TRACE', `layer ${act.layer} has ${S} step(s) with tokens; placement needs at least 2 (fit on the first half, evaluate on the second)`);
    }
    const deviceOf = fitLayerPlacement(policy, act, E, k, D);
    const m = evaluateLoad(act, deviceOf, D, k, fitEnd(S), S);
    per_layer[String(act.layer)] = m;
    placements[String(act.layer)] = Array.from(deviceOf);
    sumMax += m.max_load;
    sumAvg += m.avg_max_load;
  }
  const L = activity.layers.length;
  return { max_load: sumMax / L, avg_max_load: sumAvg / L, per_layer, placements };
}
