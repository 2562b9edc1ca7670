/**
 * Named, reusable f32 work buffers owned by one model instance. A buffer grows only when a larger
 * batch arrives, so steady-state decode allocates nothing on the hot path. Views returned by `get`
 * are valid until the next `get` of the same name.
 */
export class Scratch {
  private readonly buffers = new Map<string, ScratchEntry>();

  get(name: string, length: number): Float32Array {
    let entry = this.buffers.get(name);
    if (!entry || entry.buffer.length < length) {
      const buffer = new Float32Array(Math.max(length, Math.ceil((entry?.buffer.length ?? 0) * 1.5)));
      entry = { buffer, view: buffer.subarray(0, length) };
      this.buffers.set(name, entry);
    }
    // the last view is handed out again when the length repeats (every decode step): creating a
    // typed-array view costs more than the rest of a lookup, and a step asks for dozens
    if (entry.view.length !== length) entry.view = entry.buffer.subarray(0, length);
    return entry.view;
  }

  /** Total bytes currently held: the engine's activation footprint. */
  get bytes(): number {
    let n = 0;
    for (const e of this.buffers.values()) n += e.buffer.byteLength;
    return n;
  }
}

/** A named buffer and the view of it handed out last. */
interface ScratchEntry {
  readonly buffer: Float32Array;
  view: Float32Array;
}
