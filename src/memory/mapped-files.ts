/**
 * Remembers which memory-mapped buffer holds which file, so the expert store can find where an expert
 * tensor lies on disk: a tensor that is a view into a mapped file is the byte range
 * [view.byteOffset, view.byteOffset + view.byteLength) of that file. Tensors the loader had to copy
 * (Q8_0 dequantised to bf16, misaligned views) are not, and cannot be read into a slot. One instance per
 * model load, never shared between loads.
 */
export class MappedFiles {
  private readonly paths = new WeakMap<ArrayBuffer, string>();

  constructor(private readonly mapFile: (path: string) => ArrayBuffer) {}

  /** The loader's mapFile, recording each buffer's path. */
  readonly map = (path: string): ArrayBuffer => {
    const buf = this.mapFile(path);
    this.paths.set(buf, path);
    return buf;
  };

  /** The file a buffer maps, or undefined when it is not a mapped file (a copy). */
  pathOf(buf: ArrayBufferLike): string | undefined {
    return this.paths.get(buf as ArrayBuffer);
  }
}
