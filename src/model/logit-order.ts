/**
 * Token ids in descending logit order, ties to the lower id: the candidate order of top-p (nucleus)
 * sampling (Holtzman et al., arXiv 1904.09751), which must order the whole vocabulary. A comparator
 * sort of the ids cost more than a decode step (~10 ms at 32k tokens); this is a stable LSD radix sort
 * of the logits' bits (11 bits a pass, 3 passes, O(V)), which gives exactly the comparator's order:
 * the keys order the values, and stability keeps equal values in ascending id order. -0 sorts as +0
 * (the comparator sees them equal). Logits are assumed free of NaN (a forward never produces them from
 * finite weights). The buffers are kept for the next call: one sorter per sequence.
 */
export class LogitOrder {
  private keys = new Uint32Array(0);
  private keysSpare = new Uint32Array(0);
  private ids = new Int32Array(0);
  private idsSpare = new Int32Array(0);
  private readonly buckets = new Uint32Array(RADIX);

  /** [V] the ids of `logits` by descending value, ties to the lower id; valid until the next call. */
  sort(logits: Float32Array): Int32Array {
    const V = logits.length;
    if (this.keys.length !== V) {
      this.keys = new Uint32Array(V);
      this.keysSpare = new Uint32Array(V);
      this.ids = new Int32Array(V);
      this.idsSpare = new Int32Array(V);
    }
    let keys = this.keys;
    let ids = this.ids;
    let keysTo = this.keysSpare;
    let idsTo = this.idsSpare;
    new Float32Array(keys.buffer).set(logits);
    for (let i = 0; i < V; i++) {
      const u = keys[i] === NEGATIVE_ZERO ? 0 : keys[i]!;
      // ascending order of the values as unsigned keys (negatives: every bit flipped; the rest: the
      // sign bit set), then every bit flipped again for descending order
      keys[i] = u & SIGN ? u : ~(u | SIGN) >>> 0;
      ids[i] = i;
    }
    for (let shift = 0; shift < 32; shift += RADIX_BITS) {
      const buckets = this.buckets;
      buckets.fill(0);
      for (let i = 0; i < V; i++) buckets[(keys[i]! >>> shift) & (RADIX - 1)]!++;
      let start = 0;
      for (let b = 0; b < RADIX; b++) {
        const count = buckets[b]!;
        buckets[b] = start;
        start += count;
      }
      for (let i = 0; i < V; i++) {
        const at = buckets[(keys[i]! >>> shift) & (RADIX - 1)]!++;
        keysTo[at] = keys[i]!;
        idsTo[at] = ids[i]!;
      }
      [keys, keysTo] = [keysTo, keys];
      [ids, idsTo] = [idsTo, ids];
    }
    [this.keys, this.keysSpare, this.ids, this.idsSpare] = [keys, keysTo, ids, idsTo];
    return ids;
  }
}

const SIGN = 0x80000000;
const NEGATIVE_ZERO = 0x80000000;
const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;
