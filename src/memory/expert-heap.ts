/**
 * An indexed binary min-heap over expert ids 0..experts-1, ordered by (primary[e], secondary[e]); the
 * root is the next victim. lfu and belady keep the resident experts here, so an eviction costs
 * O(log slots) instead of a scan. Keys are set by the owner (then `update(e)`).
 */
export class ExpertHeap {
  readonly primary: Float64Array; // [experts]
  readonly secondary: Float64Array; // [experts]
  private readonly heap: Int32Array; // [experts] heap order
  private readonly at: Int32Array; // [experts] index in heap, -1: not in it
  private readonly held: Int32Array; // [experts] pinned roots set aside by popUnpinned
  size = 0;

  constructor(experts: number) {
    this.primary = new Float64Array(experts);
    this.secondary = new Float64Array(experts);
    this.heap = new Int32Array(experts);
    this.at = new Int32Array(experts).fill(-1);
    this.held = new Int32Array(experts);
  }

  push(e: number): void {
    const i = this.size++;
    this.heap[i] = e;
    this.at[e] = i;
    this.up(i);
  }

  /** Restores the order after e's keys changed. */
  update(e: number): void {
    const i = this.at[e];
    this.up(i);
    this.down(this.at[e]);
  }

  /** Removes and returns the smallest expert that is not pinned (pinned[e] !== 0), or -1. Pinned ones
   *  met on the way are set aside and pushed back, so the cost is O((pinned + 1) log size). */
  popUnpinned(pinned: Int32Array): number {
    let held = 0;
    let victim = -1;
    while (this.size > 0) {
      const top = this.pop();
      if (pinned[top] === 0) {
        victim = top;
        break;
      }
      this.held[held++] = top;
    }
    for (let i = 0; i < held; i++) this.push(this.held[i]);
    return victim;
  }

  private pop(): number {
    const top = this.heap[0];
    const n = --this.size;
    this.at[top] = -1;
    if (n > 0) {
      this.heap[0] = this.heap[n];
      this.at[this.heap[0]] = 0;
      this.down(0);
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const pa = this.primary[a];
    const pb = this.primary[b];
    return pa < pb || (pa === pb && this.secondary[a] < this.secondary[b]);
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i];
    const b = this.heap[j];
    this.heap[i] = b;
    this.heap[j] = a;
    this.at[b] = i;
    this.at[a] = j;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(this.heap[i], this.heap[p])) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(this.heap[r], this.heap[l]) ? r : l;
      if (!this.before(this.heap[c], this.heap[i])) break;
      this.swap(i, c);
      i = c;
    }
  }
}
