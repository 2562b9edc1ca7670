import type { CachePolicy, CachePolicyName } from './cache-policy.js';
import { ExpertList } from './expert-list.js';

/** FIFO: evict the earliest loaded expert (resident experts in load order; O(1) plus pinned ones). */
export class FifoPolicy implements CachePolicy {
  readonly name: CachePolicyName = 'fifo';
  protected readonly order: ExpertList;

  constructor(experts: number) {
    this.order = new ExpertList(experts);
  }

  beginStep(_active: ArrayLike<number>, _from: number, _to: number): void {}

  hit(_e: number): void {}

  loaded(e: number): void {
    this.order.append(e);
  }

  evict(pinned: Int32Array): number {
    const v = this.order.firstUnpinned(pinned);
    if (v >= 0) this.order.remove(v);
    return v;
  }
}
