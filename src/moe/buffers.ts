/**
 * Where the MoE layer gets its f32 work buffers: the model's Scratch (reused across batches) or
 * anything else with the same `get`. Views stay valid until the next `get` of the same name.
 */
export interface Buffers {
  get(name: string, length: number): Float32Array;
}

/**
 * Counts the activation memory one forward asks for: each distinct buffer name at its largest length,
 * summed, since a forward holds all of its named buffers at once. This is the "activation bytes"
 * figure of Huang et al. (arXiv 2303.06182, Fig. 7) for one MoE layer, measured rather than estimated;
 * the pool underneath may round capacities up, which is the pool's business, not the policy's.
 */
export class MeteredBuffers implements Buffers {
  // parallel lists, not a Map: a layer asks for a handful of names, and one of these is made per layer
  private readonly names: string[] = [];
  private readonly lengths: number[] = [];

  constructor(private readonly inner: Buffers) {}

  get(name: string, length: number): Float32Array {
    const i = this.names.indexOf(name);
    if (i < 0) {
      this.names.push(name);
      this.lengths.push(length);
    } else if (this.lengths[i]! < length) this.lengths[i] = length;
    return this.inner.get(name, length);
  }

  /** f32 bytes requested so far */
  get bytes(): number {
    let n = 0;
    for (const l of this.lengths) n += l * 4;
    return n;
  }
}

/** Buffers that are fresh arrays each time (tests, one-off callers with no Scratch). */
export const freshBuffers: Buffers = { get: (_name, length) => new Float32Array(length) };

/** a[from, to): a itself when that is all of it (no view to make), else a view. */
export function rowRange(a: Float32Array, from: number, to: number): Float32Array {
  return from === 0 && to === a.length ? a : a.subarray(from, to);
}
