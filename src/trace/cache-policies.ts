/**
 * Eviction rules of the expert-buffering simulator (issue 5, item 3; techniques.md §2; Huang et al.,
 * "Towards MoE Deployment", arXiv 2303.06182 §4). Each rule keeps, per device, the experts of one MoE
 * layer cached there, and picks the one to drop when a missed expert needs a slot:
 * - lifo: first an expert not requested in the current step, the most recently loaded of those;
 *   otherwise the most recently loaded (the paper's rule: it suits an engine that runs a device's experts
 *   in ascending id order, so the low ids loaded first are needed first in the next step);
 * - fifo: the earliest loaded; lru: the least recently requested;
 * - lfu: the least requested so far (every request counts, hit or miss), ties: least recently requested;
 * - belady: Belady's MIN (Belady 1966), the offline optimum: the expert whose next request is farthest
 *   in the future, never = infinitely far, ties (only possible at "never") to the lowest expert id.
 * The expert being requested is never a candidate (it is not cached, or it would be a hit), so a load
 * never evicts the expert it loads.
 *
 * A sweep runs millions of evictions, so each rule keeps its order incrementally instead of scanning
 * the cache: linked lists in load or request order (fifo, lru, lifo: O(1) amortised) and indexed binary
 * heaps (lfu, belady: O(log slots)). The tests check every rule against a plain scan of the rule text.
 */
export const CACHE_POLICIES = ['lifo', 'lru', 'lfu', 'fifo', 'belady'] as const;
export type CachePolicy = (typeof CACHE_POLICIES)[number];

/** The caches of one MoE layer, one per device. `pos` is the request's index in the layer's sequence. */
export interface LayerCaches {
  /** A cached expert was requested again. */
  hit(e: number, pos: number, step: number): void;
  /** Removes and returns the victim from device `dev`'s (full) cache. */
  evict(dev: number, step: number): number;
  /** A missed expert was loaded into device `dev`'s cache. */
  load(e: number, dev: number, pos: number, step: number): void;
}

/**
 * fifo, lru and lifo: one doubly linked list per device over expert ids (an expert is on one device, so
 * one prev/next pair per expert serves every device's list). fifo and lifo keep load order, lru request
 * order (a hit moves the expert to the tail). fifo and lru evict the head.
 *
 * lifo: the victim is the last idle expert (not requested this step) walking from the tail. Within a
 * step an expert only turns busy, and new loads (busy) go to the tail, so a per-device cursor that only
 * moves towards the head finds each victim; a step costs O(slots + requests).
 *
 * (The three share one class, and lfu/belady another, so the simulator's calls see two receiver shapes
 * and stay fast inline-cached calls rather than megamorphic ones.)
 */
class ListCaches implements LayerCaches {
  private readonly prev: Int32Array; // [E]
  private readonly next: Int32Array; // [E]
  private readonly head: Int32Array; // [D] oldest end, -1 when empty
  private readonly tail: Int32Array; // [D] newest end
  private readonly lastStep: Int32Array; // [E] lifo: step of the latest request
  private readonly cursor: Int32Array; // [D] lifo: every cached expert after it is busy this step
  private readonly cursorStep: Int32Array; // [D] lifo: the step the cursor belongs to

  constructor(private readonly mode: 'fifo' | 'lru' | 'lifo', E: number, D: number, private readonly deviceOf: Int32Array) {
    this.prev = new Int32Array(E).fill(-1);
    this.next = new Int32Array(E).fill(-1);
    this.head = new Int32Array(D).fill(-1);
    this.tail = new Int32Array(D).fill(-1);
    this.lastStep = new Int32Array(E).fill(-1);
    this.cursor = new Int32Array(D).fill(-1);
    this.cursorStep = new Int32Array(D).fill(-1);
  }

  hit(e: number, _pos: number, step: number): void {
    if (this.mode === 'lru') {
      const dev = this.deviceOf[e];
      this.remove(dev, e);
      this.append(dev, e);
    } else if (this.mode === 'lifo') {
      this.lastStep[e] = step;
    }
  }

  evict(dev: number, step: number): number {
    let v = this.head[dev];
    if (this.mode === 'lifo') {
      if (this.cursorStep[dev] !== step) {
        this.cursorStep[dev] = step;
        this.cursor[dev] = this.tail[dev];
      }
      let c = this.cursor[dev];
      while (c >= 0 && this.lastStep[c] === step) c = this.prev[c];
      if (c >= 0) {
        v = c;
        this.cursor[dev] = this.prev[c];
      } else {
        v = this.tail[dev]; // every cached expert is busy: the most recently loaded
        this.cursor[dev] = -1;
      }
    }
    this.remove(dev, v);
    return v;
  }

  load(e: number, dev: number, _pos: number, step: number): void {
    this.lastStep[e] = step;
    this.append(dev, e);
  }

  private append(dev: number, e: number): void {
    const t = this.tail[dev];
    this.prev[e] = t;
    this.next[e] = -1;
    if (t >= 0) this.next[t] = e;
    else this.head[dev] = e;
    this.tail[dev] = e;
  }

  private remove(dev: number, e: number): void {
    const p = this.prev[e];
    const n = this.next[e];
    if (p >= 0) this.next[p] = n;
    else this.head[dev] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail[dev] = p;
    this.prev[e] = this.next[e] = -1;
  }
}

/**
 * lfu and belady: one indexed binary min-heap per device over expert ids, ordered by (primary[e],
 * secondary[e]); each device's root is its next victim.
 * - lfu: (requests so far, last request position): least requested, then least recently requested;
 * - belady: (-next request position, id): farthest next request first (never = -Infinity), then the
 *   lowest id. next[pos] is the position of the next request of the same expert (Infinity: never).
 */
class HeapCaches implements LayerCaches {
  private readonly heap: Int32Array; // [D * slots]
  private readonly size: Int32Array; // [D]
  private readonly at: Int32Array; // [E] index in its device's heap
  private readonly primary: Float64Array; // [E]
  private readonly secondary: Float64Array; // [E]

  constructor(
    private readonly mode: 'lfu' | 'belady',
    E: number,
    D: number,
    private readonly slots: number,
    private readonly deviceOf: Int32Array,
    private readonly nextPos: Float64Array,
  ) {
    this.heap = new Int32Array(D * slots);
    this.size = new Int32Array(D);
    this.at = new Int32Array(E);
    this.primary = new Float64Array(E);
    this.secondary = new Float64Array(E);
    if (mode === 'belady') for (let e = 0; e < E; e++) this.secondary[e] = e;
  }

  private rekey(e: number, pos: number): void {
    if (this.mode === 'lfu') {
      this.primary[e]++;
      this.secondary[e] = pos;
    } else {
      this.primary[e] = -this.nextPos[pos];
    }
  }

  hit(e: number, pos: number): void {
    this.rekey(e, pos);
    const dev = this.deviceOf[e];
    this.up(dev, this.at[e]);
    this.down(dev, this.at[e]);
  }

  evict(dev: number): number {
    const base = dev * this.slots;
    const top = this.heap[base];
    const n = --this.size[dev];
    if (n > 0) {
      this.heap[base] = this.heap[base + n];
      this.at[this.heap[base]] = 0;
      this.down(dev, 0);
    }
    return top;
  }

  load(e: number, dev: number, pos: number): void {
    this.rekey(e, pos);
    const i = this.size[dev]++;
    this.heap[dev * this.slots + i] = e;
    this.at[e] = i;
    this.up(dev, i);
  }

  private before(a: number, b: number): boolean {
    const pa = this.primary[a];
    const pb = this.primary[b];
    return pa < pb || (pa === pb && this.secondary[a] < this.secondary[b]);
  }

  private swap(base: number, i: number, j: number): void {
    const a = this.heap[base + i];
    const b = this.heap[base + j];
    this.heap[base + i] = b;
    this.heap[base + j] = a;
    this.at[b] = i;
    this.at[a] = j;
  }

  private up(dev: number, i: number): void {
    const base = dev * this.slots;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(this.heap[base + i], this.heap[base + p])) break;
      this.swap(base, i, p);
      i = p;
    }
  }

  private down(dev: number, i: number): void {
    const base = dev * this.slots;
    const n = this.size[dev];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(this.heap[base + r], this.heap[base + l]) ? r : l;
      if (!this.before(this.heap[base + c], this.heap[base + i])) break;
      this.swap(base, i, c);
      i = c;
    }
  }
}

/**
 * The caches of one layer under `policy`. `next[pos]` (Belady only) is the position of the next request
 * of the same expert, Infinity for never.
 */
export function layerCaches(policy: CachePolicy, E: number, D: number, slots: number, deviceOf: Int32Array, next?: Float64Array): LayerCaches {
  if (policy === 'lfu' || policy === 'belady') return new HeapCaches(policy, E, D, slots, deviceOf, next ?? new Float64Array(0));
  return new ListCaches(policy, E, D, deviceOf);
}
