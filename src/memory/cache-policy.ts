/**
 * An eviction rule of an expert cache (techniques.md §2; Huang et al., "Towards MoE Deployment",
 * arXiv 2303.06182 §4). One instance orders the resident experts of ONE cache: one MoE layer on one
 * device, a fixed number of slots, expert ids 0..experts-1 (a device numbers its own experts locally,
 * in ascending global order). The cache (`CacheSlots`) owns residency and pins; the rule only decides
 * which resident expert goes when a missed one needs a slot.
 *
 * Written for on-line use, so the run-time expert cache and `simulate cache` drive the same code:
 * - `beginStep` gives the step's whole active set before any request: gating decides it before a
 *   single expert is loaded, and LIFO's rule needs it;
 * - `evict` skips pinned experts (those the current layer is still using), and returns -1 when every
 *   resident expert is pinned, so a cache smaller than the active set streams experts through.
 * Belady's MIN (`foresee`) needs each request's next use: it exists only where the future is known (a
 * recorded trace), and the registry marks it off-line.
 */
export interface CachePolicy {
  readonly name: CachePolicyName;
  /** A step begins: active[from..to) are the experts this cache will serve in it, ascending. */
  beginStep(active: ArrayLike<number>, from: number, to: number): void;
  /** A resident expert was requested. */
  hit(e: number): void;
  /** A missed expert became resident. */
  loaded(e: number): void;
  /** Picks a resident expert with pinned[e] === 0, forgets it and returns it; -1 if all are pinned. */
  evict(pinned: Int32Array): number;
  /** Off-line rules only, called before each request of `e`: its next request after this one is at
   *  position `nextUse` of the cache's request sequence (Infinity: never). */
  foresee?(e: number, nextUse: number): void;
}

export const CACHE_POLICIES = ['lifo', 'lru', 'lfu', 'fifo', 'belady'] as const;
export type CachePolicyName = (typeof CACHE_POLICIES)[number];
