import { fail } from '../errors.js';
import { checkDevices, contiguousPlacement, type PlacementPolicy } from '../parallel/placement.js';
import { CACHE_POLICIES, layerCaches, type CachePolicy } from './cache-policies.js';
import type { LayerActivity, TraceActivity } from './activity.js';
import { fitLayerPlacement } from './placement-sim.js';

export { CACHE_POLICIES, type CachePolicy } from './cache-policies.js';

/**
 * Trace-driven simulator of expert buffering (issue 5, item 3; techniques.md §2; Huang et al., arXiv
 * 2303.06182 §4). Semantics, fixed so results reproduce anywhere:
 * - one cache per (device, MoE layer), holding at most `slots` experts of that layer placed on that
 *   device; without devices there is one device holding every expert;
 * - at each step each device requests, per MoE layer, its active experts (>= 1 token) in ascending id;
 *   a cached expert is a hit, otherwise a miss that loads it, evicting by the policy when full.
 * Caches of different layers never interact, so layers are simulated one after another; the devices
 * of one layer are simulated together because they partition its experts.
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
  policy: CachePolicy;
  slots: number;
  devices?: number; // default 1
  placement?: PlacementPolicy; // default contiguous; only matters with devices > 1
}

/** Optional per-request record, for tests and debugging: hit (1/0) and the evicted expert (-1: none). */
export interface RequestLog {
  hit: Uint8Array; // [requests]
  evicted: Int32Array; // [requests]
}

export function stats(requests: number, hits: number): CacheStats {
  return { requests, hits, misses: requests - hits, miss_rate: requests > 0 ? (requests - hits) / requests : 0 };
}

/**
 * Next request position of the same expert for every request of a layer (Infinity: never again). The
 * request sequence is act.experts in order (steps ascending, ids ascending within a step); an expert
 * always lives on one device, so this order restricted to a device is that device's request order.
 */
export function nextRequest(act: LayerActivity, E: number): Float64Array {
  const n = act.experts.length;
  const next = new Float64Array(n); // [requests]
  const seenAt = new Float64Array(E).fill(Infinity); // [E] position of the later request of each expert
  for (let p = n - 1; p >= 0; p--) {
    const e = act.experts[p];
    next[p] = seenAt[e];
    seenAt[e] = p;
  }
  return next;
}

/** Simulates one MoE layer's caches (one per device) and returns that layer's totals. */
export function simulateLayerCache(
  act: LayerActivity,
  E: number,
  policy: CachePolicy,
  slots: number,
  deviceOf: Int32Array,
  D: number,
  log?: RequestLog,
): CacheStats {
  if (!Number.isInteger(slots) || slots < 1) fail('E_BAD_OPTION', `--slots must be a positive integer, got ${slots}`);
  const next = policy === 'belady' ? nextRequest(act, E) : undefined;
  const caches = layerCaches(policy, E, D, slots, deviceOf, next);
  const size = new Int32Array(D); // [D] occupied slots
  const cached = new Uint8Array(E); // [E]
  let hits = 0;
  const S = act.steps.length;
  for (let i = 0; i < S; i++) {
    for (let p = act.offsets[i]; p < act.offsets[i + 1]; p++) {
      const e = act.experts[p];
      let evicted = -1;
      const hit = cached[e] === 1;
      if (hit) {
        hits++;
        caches.hit(e, p, i);
      } else {
        const dev = deviceOf[e];
        if (size[dev] < slots) {
          size[dev]++;
        } else {
          evicted = caches.evict(dev, i);
          cached[evicted] = 0;
        }
        caches.load(e, dev, p, i);
        cached[e] = 1;
      }
      if (log) {
        log.hit[p] = hit ? 1 : 0;
        log.evicted[p] = evicted;
      }
    }
  }
  return stats(act.experts.length, hits);
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
  if (!(CACHE_POLICIES as readonly string[]).includes(opts.policy)) fail('E_BAD_OPTION', `unknown cache policy '${opts.policy}'`);
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
export function sweepCache(activity: TraceActivity, slotList: number[], devices = 1, placement: PlacementPolicy = 'contiguous'): Record<CachePolicy, CacheStats[]> {
  const { num_experts: E, top_k: k } = activity.header;
  checkDevices(E, devices);
  const out = Object.fromEntries(CACHE_POLICIES.map((p) => [p, slotList.map(() => stats(0, 0))])) as Record<CachePolicy, CacheStats[]>;
  for (const act of activity.layers) {
    const deviceOf = cachePlacement(act, E, k, devices, placement);
    for (const policy of CACHE_POLICIES) {
      slotList.forEach((slots, j) => {
        const s = simulateLayerCache(act, E, policy, slots, deviceOf, devices);
        const acc = out[policy][j];
        out[policy][j] = stats(acc.requests + s.requests, acc.hits + s.hits);
      });
    }
  }
  return out;
}
