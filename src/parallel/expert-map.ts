import { fail } from '../errors.js';
import type { TraceActivity } from '../trace/activity.js';
import { fitEnd, fitLayerPlacement } from './placement.js';
import { rebalanceExperts } from './eplb.js';
import { PLACEMENT_POLICIES, checkDevices, placeExperts, type PlacementPolicy } from './placement.js';

/**
 * Which ranks hold which experts, per MoE layer: the placement made real at load (docs/parallel.md).
 * `holders[e]` lists the ranks holding a copy of expert e, one entry per replica (EPLB can give a hot
 * expert several); an expert's rows are dealt to its copies in turn, so a hot expert's tokens are split
 * over its replicas. Placements come from the same code as `simulate placement` and `eplb`.
 */
export const EP_PLACEMENTS = [...PLACEMENT_POLICIES, 'eplb'] as const;
export type EpPlacement = (typeof EP_PLACEMENTS)[number];
/** experts: each rank holds whole experts (a placement); shard: every rank a 1/N slice of every expert (MoEShard) */
export const EP_MODES = ['experts', 'shard'] as const;
export type EpMode = (typeof EP_MODES)[number];

export interface LayerExperts {
  /** [experts] the ranks holding each expert's copies (length = its replica count) */
  readonly holders: readonly Int32Array[];
}

export interface ExpertMap {
  readonly ranks: number;
  readonly experts: number;
  /** per model layer; null for dense layers */
  readonly layers: readonly (LayerExperts | null)[];
}

export interface PlacementOptions {
  readonly placement: EpPlacement;
  /** routing trace the fitted policies (greedy, anticorr, eplb) learn from */
  readonly trace?: TraceActivity;
  /** EPLB's physical expert slots over all ranks (default: the number of experts, no replicas) */
  readonly replicas?: number;
}

/** The rank that runs row i of expert e's group (replicas take turns). */
export function holderOf(layer: LayerExperts, e: number, i: number): number {
  const h = layer.holders[e]!;
  return h[i % h.length]!;
}

/** Experts (ascending) with at least one copy on `rank`. */
export function expertsOn(layer: LayerExperts, rank: number): number[] {
  const out: number[] = [];
  layer.holders.forEach((h, e) => {
    if (h.includes(rank)) out.push(e);
  });
  return out;
}

/** Copies held by each rank (a rank holding two replicas of one expert maps its weights once). */
export function copiesPerRank(layer: LayerExperts, ranks: number): number[] {
  const n = new Array<number>(ranks).fill(0);
  for (const h of layer.holders) for (const r of new Set(h)) n[r]!++;
  return n;
}

/**
 * The expert map of a model: `moeLayers[l]` says whether model layer l is a MoE layer. The fitted
 * policies need a trace of the same model (same experts, same MoE layers) and all fit on the first
 * half of its steps, as `simulate placement` does (greedy and anticorr with simulate's own code, EPLB
 * on the loads of those steps), so `bench ep` can set the Max Load measured on the second half beside
 * the simulator's prediction.
 */
export function buildExpertMap(moeLayers: readonly boolean[], E: number, N: number, o: PlacementOptions): ExpertMap {
  checkDevices(E, N, '--ranks');
  const fitted = o.placement === 'greedy' || o.placement === 'anticorr' || o.placement === 'eplb';
  if (fitted && !o.trace) fail('E_BAD_OPTION', `--placement ${o.placement} is fitted on a routing trace: give --placement-trace FILE (record one with moesaic trace)`);
  if (o.replicas !== undefined && o.placement !== 'eplb') fail('E_BAD_OPTION', `--replicas is EPLB's: it needs --placement eplb (got --placement ${o.placement})`);
  const activityOf = traceLayers(moeLayers, E, o.trace);
  const layers = moeLayers.map((isMoe, l) => {
    if (!isMoe) return null;
    if (o.placement === 'eplb') return eplbLayer(activityOf.get(l)!, E, N, o.replicas ?? E);
    const act = activityOf.get(l);
    const deviceOf = act ? fitLayerPlacement(o.placement as PlacementPolicy, act, E, o.trace!.header.top_k, N) : placeExperts(o.placement as PlacementPolicy, E, N);
    return { holders: Array.from(deviceOf, (r) => Int32Array.of(r)) };
  });
  return { ranks: N, experts: E, layers };
}

/** The trace's layers by model layer index, checked against the model. */
function traceLayers(moeLayers: readonly boolean[], E: number, trace: TraceActivity | undefined): Map<number, TraceActivity['layers'][number]> {
  const byLayer = new Map<number, TraceActivity['layers'][number]>();
  if (!trace) return byLayer;
  if (trace.header.num_experts !== E) fail('E_BAD_TRACE', `--placement-trace has ${trace.header.num_experts} experts per layer, the model ${E}`);
  for (const act of trace.layers) byLayer.set(act.layer, act);
  moeLayers.forEach((isMoe, l) => {
    if (isMoe && !byLayer.has(l)) fail('E_BAD_TRACE', `--placement-trace has no records for MoE layer ${l} of this model`);
  });
  return byLayer;
}

/** EPLB's plan for one layer: `replicas` physical slots, slot s on rank floor(s / (replicas / N)). */
function eplbLayer(act: TraceActivity['layers'][number], E: number, N: number, replicas: number): LayerExperts {
  const load = new Array<number>(E).fill(0);
  const fitted = act.offsets[fitEnd(act.steps.length)]!;
  for (let p = 0; p < fitted; p++) load[act.experts[p]!]! += act.counts[p]!;
  const plan = rebalanceExperts([load], { replicas, groups: 1, nodes: 1, gpus: N }).layers[0]!;
  const perRank = replicas / N;
  const holders: number[][] = Array.from({ length: E }, () => []);
  for (const row of plan.log2phy.entries()) {
    const [e, slots] = row;
    for (const s of slots) if (s >= 0) holders[e]!.push(Math.floor(s / perRank));
  }
  return { holders: holders.map((h) => Int32Array.from(h)) };
}
