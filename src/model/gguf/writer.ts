import { fail } from '../../errors.js';
import { OutputFile } from '../../io/atomic-writer.js';
import type { MetaScalar, Metadata, MetaValue } from './format.js';
import { alignUp, DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, tensorBytes, ValueType } from './format.js';

/** A tensor to write: its info, and a producer that emits exactly its bytes, in order, in pieces. */
export interface GgufTensorOut {
  readonly name: string;
  readonly type: number;
  /** ggml dims, ne[0] fastest-varying */
  readonly ne: readonly number[];
  produce(emit: (bytes: Uint8Array) => void): void;
}

/** Growable little-endian byte builder for the header. */
class Bytes {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void { this.room(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.room(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.room(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.room(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.room(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.room(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.room(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.room(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint): void { this.room(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint): void { this.room(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.room(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  pad(alignment: number): void {
    const n = alignUp(this.length, alignment) - this.length;
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(b: Bytes, type: ValueType, v: MetaScalar, key: string): void {
  switch (type) {
    case ValueType.U8: return b.u8(Number(v));
    case ValueType.I8: return b.i8(Number(v));
    case ValueType.U16: return b.u16(Number(v));
    case ValueType.I16: return b.i16(Number(v));
    case ValueType.U32: return b.u32(Number(v));
    case ValueType.I32: return b.i32(Number(v));
    case ValueType.F32: return b.f32(Number(v));
    case ValueType.F64: return b.f64(Number(v));
    case ValueType.BOOL: return b.u8(v ? 1 : 0);
    case ValueType.U64: return b.u64(typeof v === 'bigint' ? v : Number(v));
    case ValueType.I64: return b.i64(typeof v === 'bigint' ? v : Number(v));
    case ValueType.STRING: return b.string(String(v));
    default: fail('E_IO', `metadata '${key}': cannot write value type ${type}`);
  }
}

function writeValue(b: Bytes, key: string, v: MetaValue): void {
  b.u32(v.type);
  if (v.type !== ValueType.ARRAY) return writeScalar(b, v.type, v.value as MetaScalar, key);
  const items = v.value as readonly MetaScalar[];
  b.u32(v.itemType!);
  b.u64(items.length);
  for (const item of items) writeScalar(b, v.itemType!, item, key);
}

/**
 * Write a GGUF v3 file: header, metadata, tensor infos, then each tensor's bytes at the next multiple
 * of the alignment. Tensors are produced one at a time, so a model of any size is written with the
 * memory of its largest piece. The file appears under `path` only when complete (an OutputFile, see
 * src/io); on any failure the partial file is removed.
 */
export function writeGguf(
  path: string,
  metadata: Metadata,
  tensors: readonly GgufTensorOut[],
  alignment = DEFAULT_ALIGNMENT,
  /** called after each tensor is written (a long export prints progress from it) */
  onTensor?: (done: number, total: number) => void,
): void {
  const h = new Bytes();
  h.u32(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(metadata.size);
  for (const [key, value] of metadata) {
    h.string(key);
    writeValue(h, key, value);
  }
  const sizes = tensors.map((t) => tensorBytes(t.type, t.ne));
  let offset = 0;
  tensors.forEach((t, i) => {
    h.string(t.name);
    h.u32(t.ne.length);
    for (const d of t.ne) h.u64(d);
    h.u32(t.type);
    h.u64(offset);
    offset = alignUp(offset + sizes[i]!, alignment);
  });
  h.pad(alignment);

  const file = new OutputFile(path);
  try {
    file.write(h.bytes());
    const zeros = new Uint8Array(alignment);
    tensors.forEach((t, i) => {
      let written = 0;
      t.produce((bytes) => {
        file.write(bytes);
        written += bytes.length;
      });
      if (written !== sizes[i]) fail('E_IO', `tensor '${t.name}': produced ${written} bytes, expected ${sizes[i]}`);
      if (i + 1 < tensors.length) file.write(zeros.subarray(0, alignUp(written, alignment) - written));
      onTensor?.(i + 1, tensors.length);
    });
    file.commit();
  } catch (e) {
    file.abort();
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && !e.code.startsWith('E_')) fail('E_IO', `cannot write ${path}: ${e.message}`);
    throw e;
  }
}
