import { fail } from '../errors.js';
import type { CacheSlots } from './cache-slots.js';

/**
 * One MoE layer's expert cache at run time: the residency decisions of `CacheSlots` (the same code
 * `simulate cache` replays, called in the same order: beginStep(active), then access(e) for each active
 * expert in ascending id, so a run and the simulation of its trace count the same hits and misses), plus
 * what only a running engine has: which slot's bytes an expert of this step still needs.
 *
 * Pinning without changing the decisions: when the rule evicts an expert the step has already claimed
 * (only when every resident expert is active, i.e. the cache is smaller than the active set), the slot is
 * not overwritten until that expert has run and been released; the new expert is chained behind it and
 * its read starts at the release. A chain's head is always runnable (a hit or an issued read), so
 * experts stream through any number of slots, down to one.
 */
export class LayerCache {
  /** [slots] expert whose bytes this step's computation reads from the slot (-1: none) */
  readonly owner: Int32Array;
  /** [slots] last expert chained on the slot this step */
  private readonly tail: Int32Array;
  /** [experts] expert to load into the same slot after this one is released (-1: none) */
  private readonly after: Int32Array;
  /** [experts] the slot holding (or to hold) the expert's bytes for this step, -1: not claimed */
  readonly slotFor: Int32Array;
  /** [experts] 1: loaded by a prefetch and not used since */
  readonly prefetched: Uint8Array;
  /** [experts] 1: claimed this step as a hit (resident before the step: runnable first) */
  readonly hit: Uint8Array;

  constructor(
    readonly slots: CacheSlots,
    /** index of this layer's first slot in the arena */
    readonly base: number,
  ) {
    this.owner = new Int32Array(slots.slots).fill(-1);
    this.tail = new Int32Array(slots.slots).fill(-1);
    this.after = new Int32Array(slots.experts).fill(-1);
    this.slotFor = new Int32Array(slots.experts).fill(-1);
    this.prefetched = new Uint8Array(slots.experts);
    this.hit = new Uint8Array(slots.experts);
  }

  /**
   * Claims expert e for this step (after beginStep, in ascending id): 'hit', 'load' (read into
   * slotFor[e] now) or 'wait' (read when the slot's current owner is released).
   */
  claim(e: number): 'hit' | 'load' | 'wait' {
    const hit = this.slots.access(e);
    const slot = this.slots.slotOf[e]!;
    this.slotFor[e] = slot;
    this.hit[e] = hit ? 1 : 0;
    if (hit) {
      this.owner[slot] = this.tail[slot] = e;
      return 'hit';
    }
    this.prefetched[e] = 0;
    const t = this.tail[slot]!;
    if (t >= 0) {
      this.after[t] = e;
      this.tail[slot] = e;
      return 'wait';
    }
    this.owner[slot] = this.tail[slot] = e;
    return 'load';
  }

  /** e has run: frees its slot for the next expert chained on it, which is returned (-1: none). */
  release(e: number): number {
    const slot = this.slotFor[e]!;
    if (slot < 0 || this.owner[slot] !== e) fail('E_BAD_OPTION', `expert cache: expert ${e} released but not in use`);
    this.slotFor[e] = -1;
    const n = this.after[e]!;
    this.after[e] = -1;
    this.owner[slot] = n;
    if (n < 0) this.tail[slot] = -1;
    return n;
  }

  /** A prefetch of e outside any step: the slot to read it into, or -1 when e is resident already. */
  prefetch(e: number): number {
    if (this.slots.resident(e)) return -1;
    this.slots.access(e);
    this.prefetched[e] = 1;
    return this.slots.slotOf[e]!;
  }
}
