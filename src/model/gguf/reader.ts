import { fail } from '../../errors.js';
import type { MetaScalar, Metadata, MetaValue } from './format.js';
import {
  alignUp,
  BLOCK,
  DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  ggmlTypeName,
  isDecodable,
  metaNumber,
  tensorBytes,
  ValueType,
} from './format.js';

/** One tensor's info record; `offset` is absolute in the file (data section start + relative offset). */
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml dims, ne[0] fastest-varying */
  readonly ne: readonly number[];
  readonly type: number;
  readonly offset: number;
  /** byte size, or -1 for a type moesaic cannot decode (its extent is unknown, so it is not checked) */
  readonly bytes: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly metadata: Metadata;
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
  readonly alignment: number;
  /** absolute offset of the tensor data section */
  readonly dataOffset: number;
}

/** Longest string or array we accept: real files stay far below; this catches garbage lengths early. */
const MAX_LENGTH = 1 << 30;

/**
 * A bounds-checked little-endian cursor: every read past the end is an E_BAD_CHECKPOINT naming the file
 * and what was being read, which is how a truncated GGUF reports itself.
 */
class Cursor {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly decoder = new TextDecoder('utf-8');
  pos = 0;

  constructor(
    buf: ArrayBuffer,
    private readonly path: string,
  ) {
    this.view = new DataView(buf);
    this.bytes = new Uint8Array(buf);
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.view.byteLength) {
      fail('E_BAD_CHECKPOINT', `${this.path}: file ends at byte ${this.view.byteLength} while reading ${what} (truncated GGUF?)`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** u64 as a number; values beyond 2^53 (never a valid length or offset here) are errors. */
  u64(what: string): number {
    const v = this.u64Big(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('E_BAD_CHECKPOINT', `${this.path}: ${what} is ${v}, impossibly large`);
    return Number(v);
  }
  u64Big(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  string(what: string): string {
    const len = this.u64(`the length of ${what}`);
    if (len > MAX_LENGTH) fail('E_BAD_CHECKPOINT', `${this.path}: ${what} claims ${len} bytes (corrupt GGUF?)`);
    this.need(len, what);
    const s = this.decoder.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  scalar(type: ValueType, what: string): MetaScalar {
    const v = this.view;
    const at = this.pos;
    const take = (n: number) => {
      this.need(n, what);
      this.pos += n;
    };
    switch (type) {
      case ValueType.U8: take(1); return v.getUint8(at);
      case ValueType.I8: take(1); return v.getInt8(at);
      case ValueType.U16: take(2); return v.getUint16(at, true);
      case ValueType.I16: take(2); return v.getInt16(at, true);
      case ValueType.U32: take(4); return v.getUint32(at, true);
      case ValueType.I32: take(4); return v.getInt32(at, true);
      case ValueType.F32: take(4); return v.getFloat32(at, true);
      case ValueType.F64: take(8); return v.getFloat64(at, true);
      case ValueType.BOOL: take(1); return v.getUint8(at) !== 0;
      case ValueType.U64: take(8); return narrow(v.getBigUint64(at, true));
      case ValueType.I64: take(8); return narrow(v.getBigInt64(at, true));
      case ValueType.STRING: return this.string(what);
      default:
        fail('E_BAD_CHECKPOINT', `${this.path}: ${what} has unknown value type ${type}`);
    }
  }
}

/** 64-bit integers as plain numbers when exact (all real counts and ids are). */
function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Parse a GGUF file held in `buf` (normally a read-only memory map): header, metadata and tensor
 * infos. Only the header pages are touched; tensor data is left in place for zero-copy views.
 */
export function parseGguf(buf: ArrayBuffer, path: string): GgufFile {
  const c = new Cursor(buf, path);
  if (buf.byteLength < 4 || new DataView(buf).getUint32(0, true) !== GGUF_MAGIC) {
    fail('E_BAD_CHECKPOINT', `${path}: not a GGUF file (the first 4 bytes are not "GGUF")`);
  }
  c.pos = 4;
  const version = c.u32('the version');
  if (version === 1) fail('E_BAD_CHECKPOINT', `${path}: GGUF version 1 is not supported (re-convert with a llama.cpp from 2023-10 or later)`);
  if (version !== 2 && version !== 3) {
    const hint = version > 0xffff ? ' (a big-endian GGUF? only little-endian files are supported)' : '';
    fail('E_BAD_CHECKPOINT', `${path}: unsupported GGUF version ${version}${hint}`);
  }
  const tensorCount = c.u64('the tensor count');
  const kvCount = c.u64('the metadata count');
  if (tensorCount > MAX_LENGTH || kvCount > MAX_LENGTH) fail('E_BAD_CHECKPOINT', `${path}: implausible tensor/metadata counts (corrupt GGUF?)`);

  const metadata: Metadata = new Map();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key #${i}`);
    metadata.set(key, readValue(c, key, path));
  }

  const alignment = metaNumber(metadata, 'general.alignment') ?? DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
    fail('E_BAD_CHECKPOINT', `${path}: general.alignment ${alignment} is not a power of two`);
  }

  const infos: { name: string; ne: number[]; type: number; rel: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`the name of tensor #${i}`);
    const nDims = c.u32(`the rank of tensor '${name}'`);
    if (nDims < 1 || nDims > 4) fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' has ${nDims} dimensions (1 to 4 allowed)`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.u64(`dimension ${d} of tensor '${name}'`));
    const type = c.u32(`the type of tensor '${name}'`);
    const rel = c.u64(`the data offset of tensor '${name}'`);
    infos.push({ name, ne, type, rel });
  }

  const dataOffset = alignUp(c.pos, alignment);
  const tensors = new Map<string, GgufTensorInfo>();
  for (const { name, ne, type, rel } of infos) {
    if (tensors.has(name)) fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' appears twice`);
    if (rel % alignment !== 0) fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' data offset ${rel} is not a multiple of the alignment ${alignment}`);
    let bytes = -1;
    if (isDecodable(type)) {
      if (ne[0]! % BLOCK[type]!.elems !== 0) {
        fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' (${ggmlTypeName(type)}) has ne[0]=${ne[0]}, not a multiple of its block size ${BLOCK[type]!.elems}`);
      }
      bytes = tensorBytes(type, ne);
      const end = dataOffset + rel + bytes;
      if (end > buf.byteLength) {
        fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' ends at byte ${end} but the file has ${buf.byteLength} bytes (truncated GGUF?)`);
      }
    }
    tensors.set(name, { name, ne, type, offset: dataOffset + rel, bytes });
  }
  if (tensorCount > 0 && dataOffset > buf.byteLength) {
    fail('E_BAD_CHECKPOINT', `${path}: the tensor data section starts past the end of the file (truncated GGUF?)`);
  }
  return { path, version, metadata, tensors, alignment, dataOffset };
}

/** Bytes per array element (at least, for strings: their u64 length) to reject lengths the file cannot hold. */
const ITEM_BYTES: Partial<Record<ValueType, number>> = {
  [ValueType.U8]: 1, [ValueType.I8]: 1, [ValueType.BOOL]: 1, [ValueType.U16]: 2, [ValueType.I16]: 2,
  [ValueType.U32]: 4, [ValueType.I32]: 4, [ValueType.F32]: 4,
};

function readValue(c: Cursor, key: string, path: string): MetaValue {
  const type = c.u32(`the type of metadata '${key}'`) as ValueType;
  if (type !== ValueType.ARRAY) return { type, value: c.scalar(type, `metadata '${key}'`) };
  const itemType = c.u32(`the element type of metadata '${key}'`) as ValueType;
  if (itemType === ValueType.ARRAY) fail('E_BAD_CHECKPOINT', `${path}: metadata '${key}' is an array of arrays (not supported)`);
  const len = c.u64(`the length of metadata '${key}'`);
  if (len > MAX_LENGTH) fail('E_BAD_CHECKPOINT', `${path}: metadata '${key}' claims ${len} elements (corrupt GGUF?)`);
  c.need(len * (ITEM_BYTES[itemType] ?? 8), `the ${len} elements of metadata '${key}'`);
  const value: MetaScalar[] = new Array(len);
  for (let i = 0; i < len; i++) value[i] = c.scalar(itemType, `element ${i} of metadata '${key}'`);
  return { type, itemType, value };
}
