import type { CachePolicy } from './cache-policy.js';
import { ExpertList } from './expert-list.js';

/** LRU: evict the least recently requested expert (resident experts in request order: a hit moves the
 *  expert to the tail; O(1) plus pinned ones). */
export class LruPolicy implements CachePolicy {
  readonly name = 'lru' as const;
  private readonly order: ExpertList;

  constructor(experts: number) {
    this.order = new ExpertList(experts);
  }

  beginStep(_active: ArrayLike<number>, _from: number, _to: number): void {}

  hit(e: number): void {
    this.order.remove(e);
    this.order.append(e);
  }

  loaded(e: number): void {
    this.order.append(e);
  }

  evict(pinned: Int32Array): number {
    const v = this.order.firstUnpinned(pinned);
    if (v >= 0) this.order.remove(v);
    return v;
  }
}
