import { fail } from '../errors.js';
import type { CachePolicy } from './cache-policy.js';

/**
 * Residency of one expert cache: one MoE layer on one device, `slots` slots, expert ids
 * 0..experts-1, evictions decided by a `CachePolicy`. The run-time expert cache and `simulate cache`
 * both drive this class, so a run and the simulation of its trace count the same hits and misses when
 * they make the same calls:
 *   beginStep(active set)  ->  access(e) for each active expert in ascending id  (simulate cache's order)
 * An engine pins the experts its layer is still using (pin/unpin); a miss then evicts only unpinned
 * experts, so a cache smaller than the active set streams experts through. Nothing is allocated per
 * call; the slot index of an expert (`slotOf`) names where its weights live.
 */
export class CacheSlots {
  readonly slotOf: Int32Array; // [experts] slot of a resident expert, -1: not resident
  readonly holder: Int32Array; // [slots] expert in the slot, -1: free
  readonly pins: Int32Array; // [experts] pin count
  /** The expert the latest access evicted, -1: none (a hit, or a free slot was used). */
  evicted = -1;
  private used = 0;

  constructor(
    readonly experts: number,
    readonly slots: number,
    readonly policy: CachePolicy,
  ) {
    if (!Number.isInteger(slots) || slots < 1) fail('E_BAD_OPTION', `cache slots must be a positive integer, got ${slots}`);
    this.slotOf = new Int32Array(experts).fill(-1);
    this.holder = new Int32Array(slots).fill(-1);
    this.pins = new Int32Array(experts);
  }

  /** A step begins: active[from..to) are the experts this cache will serve in it, ascending. */
  beginStep(active: ArrayLike<number>, from = 0, to = active.length): void {
    this.policy.beginStep(active, from, to);
  }

  resident(e: number): boolean {
    return this.slotOf[e] >= 0;
  }

  /**
   * Requests expert e: true on a hit. On a miss e becomes resident in a free slot or in the slot of the
   * victim (`evicted`); the caller loads its weights into `slotOf[e]`. Fails if every slot is pinned.
   */
  access(e: number): boolean {
    this.evicted = -1;
    if (this.slotOf[e] >= 0) {
      this.policy.hit(e);
      return true;
    }
    let slot: number;
    if (this.used < this.slots) {
      slot = this.used++;
    } else {
      const v = this.policy.evict(this.pins);
      if (v < 0) fail('E_BAD_OPTION', `expert cache: all ${this.slots} slots hold experts in use, none can make room for expert ${e}`);
      slot = this.slotOf[v];
      this.slotOf[v] = -1;
      this.evicted = v;
    }
    this.slotOf[e] = slot;
    this.holder[slot] = e;
    this.policy.loaded(e);
    return false;
  }

  pin(e: number): void {
    this.pins[e]++;
  }

  unpin(e: number): void {
    if (this.pins[e] === 0) fail('E_BAD_OPTION', `expert cache: expert ${e} unpinned more often than pinned`);
    this.pins[e]--;
  }
}
