import { fail } from '../errors.js';

/**
 * Keys and values of one sequence, per layer: [capacity, kvHeads * headDim] f32 each. `length` is how
 * many positions are filled; a forward over T new tokens writes positions length .. length+T-1.
 */
export class KvCache {
  readonly keys: Float32Array[] = [];
  readonly values: Float32Array[] = [];
  length = 0;

  constructor(
    layers: number,
    readonly capacity: number,
    readonly rowSize: number,
  ) {
    for (let l = 0; l < layers; l++) {
      this.keys.push(new Float32Array(capacity * rowSize));
      this.values.push(new Float32Array(capacity * rowSize));
    }
  }

  /** Throws a clear error when `tokens` more positions do not fit. */
  reserve(tokens: number): void {
    if (this.length + tokens > this.capacity) {
      fail(
        'E_BAD_INPUT',
        `sequence of ${this.length + tokens} tokens exceeds the context of ${this.capacity} positions`,
      );
    }
  }

  /** bytes held (0 after free) */
  get bytes(): number {
    return kvCacheBytes(this.keys.length, this.capacity, this.rowSize);
  }

  /** Drops the buffers; the cache cannot be used again. */
  free(): void {
    this.keys.length = 0;
    this.values.length = 0;
    this.length = this.capacity;
  }
}

/** Bytes of the keys and values of `layers` layers of `capacity` positions of `rowSize` floats. */
export function kvCacheBytes(layers: number, capacity: number, rowSize: number): number {
  return 2 * layers * capacity * rowSize * 4;
}
