import { FifoPolicy } from './cache-policy-fifo.js';

/** LRU: evict the least recently requested expert. FIFO's list, with a hit moving the expert to the
 *  tail, so the list is in request order (O(1) plus pinned ones). */
export class LruPolicy extends FifoPolicy {
  override readonly name = 'lru';

  override hit(e: number): void {
    this.order.remove(e);
    this.order.append(e);
  }
}
