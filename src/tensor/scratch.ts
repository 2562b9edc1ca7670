/**
 * Named, reusable f32 work buffers owned by one model instance. A buffer grows only when a larger
 * batch arrives, so steady-state decode allocates nothing on the hot path. Views returned by `get`
 * are valid until the next `get` of the same name.
 */
export class Scratch {
  private readonly buffers = new Map<string, Float32Array>();

  get(name: string, length: number): Float32Array {
    let buf = this.buffers.get(name);
    if (!buf || buf.length < length) {
      buf = new Float32Array(Math.max(length, Math.ceil((buf?.length ?? 0) * 1.5)));
      this.buffers.set(name, buf);
    }
    return buf.subarray(0, length);
  }

  /** Total bytes currently held: the engine's activation footprint. */
  get bytes(): number {
    let n = 0;
    for (const b of this.buffers.values()) n += b.byteLength;
    return n;
  }
}
