import type { CachePolicy } from './cache-policy.js';
import { ExpertHeap } from './expert-heap.js';

/**
 * LFU: evict the least requested expert so far, counting every request to this cache since it started
 * (hits and misses, also while the expert was not resident); ties: the least recently requested.
 * Resident experts sit in a heap keyed (requests, last request), so an eviction is O(log slots).
 */
export class LfuPolicy implements CachePolicy {
  readonly name = 'lfu' as const;
  private readonly heap: ExpertHeap;
  private readonly requests: Float64Array; // [experts] requests so far, resident or not
  private clock = 0; // requests so far to this cache

  constructor(experts: number) {
    this.heap = new ExpertHeap(experts);
    this.requests = new Float64Array(experts);
  }

  beginStep(_active: ArrayLike<number>, _from: number, _to: number): void {}

  private requested(e: number): void {
    this.heap.primary[e] = ++this.requests[e];
    this.heap.secondary[e] = this.clock++;
  }

  hit(e: number): void {
    this.requested(e);
    this.heap.update(e);
  }

  loaded(e: number): void {
    this.requested(e);
    this.heap.push(e);
  }

  evict(pinned: Int32Array): number {
    return this.heap.popUnpinned(pinned);
  }
}
