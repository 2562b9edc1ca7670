import type { CachePolicy } from './cache-policy.js';
import { ExpertHeap } from './expert-heap.js';

/**
 * Belady's MIN (Belady 1966), the off-line optimum: evict the expert whose next request is farthest in
 * the future (never = infinitely far; ties, only possible at "never", to the lowest expert id). It needs
 * each request's next use (`foresee`), which only a recorded trace has, so it is a yardstick for the
 * simulator and not a rule for a running engine. Resident experts sit in a heap keyed (-next use, id).
 */
export class BeladyPolicy implements CachePolicy {
  readonly name = 'belady' as const;
  private readonly heap: ExpertHeap;
  private readonly nextUse: Float64Array; // [experts] from the latest foresee

  constructor(experts: number) {
    this.heap = new ExpertHeap(experts);
    this.nextUse = new Float64Array(experts).fill(Infinity);
    for (let e = 0; e < experts; e++) this.heap.secondary[e] = e;
  }

  beginStep(_active: ArrayLike<number>, _from: number, _to: number): void {}

  foresee(e: number, nextUse: number): void {
    this.nextUse[e] = nextUse;
  }

  hit(e: number): void {
    this.heap.primary[e] = -this.nextUse[e];
    this.heap.update(e);
  }

  loaded(e: number): void {
    this.heap.primary[e] = -this.nextUse[e];
    this.heap.push(e);
  }

  evict(pinned: Int32Array): number {
    return this.heap.popUnpinned(pinned);
  }
}
