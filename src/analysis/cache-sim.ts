import { fail } from '../errors.js';
import { CacheSlots } from '../memory/cache-slots.js';
import { CACHE_POLICIES, createCachePolicy, type CachePolicyName } from '../memory/cache-policies.js';
import { checkDevices, contiguousPlacement, fitLayerPlacement, type PlacementPolicy } from '../parallel/placement.js';
import type { LayerActivity, TraceActivity } from '../trace/activity.js';

export { CACHE_POLICIES, type CachePolicyName } from '../memory/cache-policies.js';

/**
 * Trace-driven simulator of expert buffering (techniques.md §2; Huang et al., arXiv 2303.06182 §4). It
 * drives the engine's own cache code (src/memory/: `CacheSlots` and the eviction rules), so a policy
 * simulated here is the policy a run uses. Semantics, fixed so results reproduce anywhere:
 * - one cache per (device, MoE layer), holding at most `slots` experts of that layer placed on that
 *   device; without devices there is one device holding every expert;
 * - at each step each device's cache first learns the step's active set of its experts (>= 1 token),
 *   then requests them in ascending id; a resident expert is a hit, otherwise a miss that loads it,
 *   evicting by the policy when the cache is full. Nothing is pinned (the simulated engine runs an
 *   expert only after its load).
 * Caches of different layers and devices never interact, so each (layer, device) is simulated on its own.
 *
 * With a fitted placement (greedy, anticorr) the placement is fitted on the first half of the layer's
 * steps (as `simulate placement` does) and the cache is simulated over all steps.
 */
export interface CacheStats {
  requests: number;
  hits: number;
  misses: number;
  miss_rate: number;
}

export interface CacheResult extends CacheStats {
  per_layer: Record<string, CacheStats>;
}

export interface CacheOptions {
  policy: CachePolicyName;
  slots: number;
  devices?: number; // default 1
  placement?: PlacementPolicy; // default contiguous; only matters with devices > 1
}

/** Optional per-request record, for tests and debugging: hit (1/0) and the evicted expert (-1: none). */
export interface RequestLog {
  hit: Uint8Array; // [requests]
  evicted: Int32Array; // [requests] global expert id
}

export function stats(requests: number, hits: number): CacheStats {
  return { requests, hits, misses: requests - hits, miss_rate: requests > 0 ? (requests - hits) / requests : 0 };
}

/** One device's requests of one layer, its experts numbered locally (ascending global order). */
interface DeviceRequests {
  global: Int32Array; // [experts on the device] local id -> global id
  offsets: Int32Array; // [S + 1] step i's requests are [offsets[i], offsets[i+1])
  experts: Int32Array; // [requests] local ids, ascending within a step
  positions: Int32Array | null; // [requests] position of the request in the layer's sequence; null: the same
}

/** Splits a layer's request sequence by device; device n's experts get local ids 0.. in id order. */
function splitByDevice(act: LayerActivity, E: number, deviceOf: Int32Array, D: number): DeviceRequests[] {
  if (D === 1) return [{ global: Int32Array.from({ length: E }, (_, e) => e), offsets: act.offsets, experts: act.experts, positions: null }];
  const localOf = new Int32Array(E); // [E]
  const held = new Int32Array(D); // [D] experts per device
  for (let e = 0; e < E; e++) localOf[e] = held[deviceOf[e]]++;
  const requests = new Int32Array(D); // [D]
  for (let p = 0; p < act.experts.length; p++) requests[deviceOf[act.experts[p]]]++;
  const S = act.steps.length;
  const out: DeviceRequests[] = Array.from({ length: D }, (_, n) => ({
    global: new Int32Array(held[n]),
    offsets: new Int32Array(S + 1),
    experts: new Int32Array(requests[n]),
    positions: new Int32Array(requests[n]),
  }));
  for (let e = 0; e < E; e++) out[deviceOf[e]].global[localOf[e]] = e;
  const fill = new Int32Array(D); // [D]
  for (let i = 0; i < S; i++) {
    for (let p = act.offsets[i]; p < act.offsets[i + 1]; p++) {
      const e = act.experts[p];
      const n = deviceOf[e];
      const d = out[n];
      d.experts[fill[n]] = localOf[e];
      d.positions![fill[n]++] = p;
    }
    for (let n = 0; n < D; n++) out[n].offsets[i + 1] = fill[n];
  }
  return out;
}

/** Next request position of the same expert for every request (Infinity: never again). */
function nextRequest(experts: Int32Array, E: number): Float64Array {
  const n = experts.length;
  const next = new Float64Array(n); // [requests]
  const seenAt = new Float64Array(E).fill(Infinity); // [E] position of the later request of each expert
  for (let p = n - 1; p >= 0; p--) {
    const e = experts[p];
    next[p] = seenAt[e];
    seenAt[e] = p;
  }
  return next;
}

/** Replays one device's requests through a fresh cache; returns the hits. */
function simulateDevice(req: DeviceRequests, policyName: CachePolicyName, slots: number, log?: RequestLog): number {
  const E = req.global.length;
  if (req.experts.length === 0) return 0;
  const policy = createCachePolicy(policyName, E);
  const cache = new CacheSlots(E, Math.min(slots, E), policy);
  const next = policy.foresee !== undefined ? nextRequest(req.experts, E) : undefined;
  let hits = 0;
  const S = req.offsets.length - 1;
  for (let i = 0; i < S; i++) {
    const from = req.offsets[i];
    const to = req.offsets[i + 1];
    if (from === to) continue;
    cache.beginStep(req.experts, from, to);
    for (let q = from; q < to; q++) {
      const e = req.experts[q];
      if (next !== undefined) policy.foresee!(e, next[q]);
      const hit = cache.access(e);
      if (hit) hits++;
      if (log) {
        const p = req.positions === null ? q : req.positions[q];
        log.hit[p] = hit ? 1 : 0;
        log.evicted[p] = cache.evicted < 0 ? -1 : req.global[cache.evicted];
      }
    }
  }
  return hits;
}

/** Simulates one MoE layer's caches (one per device) and returns that layer's totals. */
export function simulateLayerCache(
  act: LayerActivity,
  E: number,
  policy: CachePolicyName,
  slots: number,
  deviceOf: Int32Array,
  D: number,
  log?: RequestLog,
): CacheStats {
  return simulateSplitLayer(splitByDevice(act, E, deviceOf, D), act.experts.length, policy, slots, log);
}

function simulateSplitLayer(devices: DeviceRequests[], requests: number, policy: CachePolicyName, slots: number, log?: RequestLog): CacheStats {
  if (!Number.isInteger(slots) || slots < 1) fail('E_BAD_OPTION', `--slots must be a positive integer, got ${slots}`);
  let hits = 0;
  for (const d of devices) hits += simulateDevice(d, policy, slots, log);
  return stats(requests, hits);
}

/** Placement of one layer's experts for the cache simulation. */
export function cachePlacement(act: LayerActivity, E: number, k: number, D: number, placement: PlacementPolicy): Int32Array {
  if (D === 1) return new Int32Array(E);
  return placement === 'contiguous' ? contiguousPlacement(E, D) : fitLayerPlacement(placement, act, E, k, D);
}

/** Simulates every MoE layer; totals are sums over layers (and devices). */
export function simulateCache(activity: TraceActivity, opts: CacheOptions): CacheResult {
  const { num_experts: E, top_k: k } = activity.header;
  const D = opts.devices ?? 1;
  checkDevices(E, D);
  createCachePolicy(opts.policy, 1); // an unknown name fails before any work
  const per_layer: Record<string, CacheStats> = {};
  let requests = 0;
  let hits = 0;
  for (const act of activity.layers) {
    const deviceOf = cachePlacement(act, E, k, D, opts.placement ?? 'contiguous');
    const s = simulateLayerCache(act, E, opts.policy, opts.slots, deviceOf, D);
    per_layer[String(act.layer)] = s;
    requests += s.requests;
    hits += s.hits;
  }
  return { ...stats(requests, hits), per_layer };
}

/** Miss rate of every policy for each slot count: one row per slot count, placements fitted once. */
export function sweepCache(activity: TraceActivity, slotList: number[], devices = 1, placement: PlacementPolicy = 'contiguous'): Record<CachePolicyName, CacheStats[]> {
  const { num_experts: E, top_k: k } = activity.header;
  checkDevices(E, devices);
  const out = Object.fromEntries(CACHE_POLICIES.map((p) => [p, slotList.map(() => stats(0, 0))])) as Record<CachePolicyName, CacheStats[]>;
  for (const act of activity.layers) {
    const split = splitByDevice(act, E, cachePlacement(act, E, k, devices, placement), devices);
    for (const policy of CACHE_POLICIES) {
      slotList.forEach((slots, j) => {
        const s = simulateSplitLayer(split, act.experts.length, policy, slots);
        const acc = out[policy][j];
        out[policy][j] = stats(acc.requests + s.requests, acc.hits + s.hits);
      });
    }
  }
  return out;
}
