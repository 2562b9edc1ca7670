/**
 * A doubly linked list over expert ids 0..experts-1 (each id at most once), oldest at the head, newest
 * at the tail. fifo and lifo keep the resident experts in load order, lru in request order; every
 * operation is O(1), so a simulation of millions of evictions never scans the cache.
 */
export class ExpertList {
  readonly prev: Int32Array; // [experts] -1: none
  readonly next: Int32Array; // [experts] -1: none
  head = -1; // oldest, -1 when empty
  tail = -1; // newest

  constructor(experts: number) {
    this.prev = new Int32Array(experts).fill(-1);
    this.next = new Int32Array(experts).fill(-1);
  }

  append(e: number): void {
    const t = this.tail;
    this.prev[e] = t;
    this.next[e] = -1;
    if (t >= 0) this.next[t] = e;
    else this.head = e;
    this.tail = e;
  }

  remove(e: number): void {
    const p = this.prev[e];
    const n = this.next[e];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.prev[e] = this.next[e] = -1;
  }

  /** The first expert from the head that is not pinned (pinned[e] !== 0), or -1. */
  firstUnpinned(pinned: Int32Array): number {
    let e = this.head;
    while (e >= 0 && pinned[e] !== 0) e = this.next[e];
    return e;
  }

  /** The first expert from the tail that is not pinned, or -1. */
  lastUnpinned(pinned: Int32Array): number {
    let e = this.tail;
    while (e >= 0 && pinned[e] !== 0) e = this.prev[e];
    return e;
  }
}
