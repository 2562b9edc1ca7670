import type { CachePolicy } from './cache-policy.js';
import { ExpertList } from './expert-list.js';

/**
 * LIFO as Huang et al. define it (arXiv 2303.06182 §4): evict first an expert that is not active in the
 * current step (the most recently loaded of those), otherwise the most recently loaded. "Active" is the
 * step's whole active set, known from gating before any load, so an expert the step requests later is
 * never the victim while an idle one is resident. The rule suits an engine that runs a device's experts
 * in ascending id order: the low ids loaded first are the ones the next step needs first.
 *
 * Resident experts are kept in load order. Within a step the idle ones only leave and loads of active
 * experts go to the tail, so a cursor that only moves towards the head finds each victim: a step costs
 * O(slots + requests). A load of an expert outside the active set (a prefetch) restarts the cursor.
 */
export class LifoPolicy implements CachePolicy {
  readonly name = 'lifo' as const;
  private readonly order: ExpertList;
  private readonly activeIn: Int32Array; // [experts] the last step in which the expert is active
  private step = 0;
  private cursor = -1; // every resident expert after it (towards the tail) is active this step
  private cursorValid = false;

  constructor(experts: number) {
    this.order = new ExpertList(experts);
    this.activeIn = new Int32Array(experts).fill(-1);
  }

  beginStep(active: ArrayLike<number>, from: number, to: number): void {
    this.step++;
    for (let i = from; i < to; i++) this.activeIn[active[i]] = this.step;
    this.cursorValid = false;
  }

  hit(_e: number): void {}

  loaded(e: number): void {
    this.order.append(e);
    if (this.activeIn[e] !== this.step) this.cursorValid = false;
  }

  evict(pinned: Int32Array): number {
    let c = this.cursorValid ? this.cursor : this.order.tail;
    while (c >= 0 && this.activeIn[c] === this.step) c = this.order.prev[c];
    this.cursor = c;
    this.cursorValid = true;
    // c is the newest idle expert; an idle pinned one (rare: pins are active experts) is stepped over
    while (c >= 0 && (this.activeIn[c] === this.step || pinned[c] !== 0)) c = this.order.prev[c];
    if (c < 0) c = this.order.lastUnpinned(pinned); // every unpinned resident expert is active
    if (c < 0) return -1;
    if (c === this.cursor) this.cursor = this.order.prev[c];
    this.order.remove(c);
    return c;
  }
}
