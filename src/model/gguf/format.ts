import { QUANT_FORMATS } from '../../tensor/quant/formats.js';

/**
 * The GGUF container format (llama.cpp's weight file), as far as moesaic reads and writes it.
 *
 * Layout (all little-endian): magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count,
 * the metadata key/value pairs, one info record per tensor (name, dims, ggml type, data offset), padding
 * to the alignment (`general.alignment`, default 32), then the tensor data, each tensor starting at a
 * multiple of the alignment. Strings are a u64 byte length followed by UTF-8 bytes, unterminated.
 *
 * Dimensions are ggml's `ne`: ne[0] varies fastest, so a row-major Hugging Face tensor of shape [a, b]
 * is stored with ne = [b, a]. Everything here speaks `ne`; conversions to HF shapes reverse it.
 */

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
export const DEFAULT_ALIGNMENT = 32;

/** Metadata value types (gguf_type). */
export enum ValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** A metadata value: scalars as JS values (u64/i64 as bigint only when beyond 2^53), arrays as JS arrays. */
export type MetaScalar = number | bigint | boolean | string;
export interface MetaValue {
  readonly type: ValueType;
  /** element type when `type` is ARRAY */
  readonly itemType?: ValueType;
  readonly value: MetaScalar | readonly MetaScalar[];
}
export type Metadata = Map<string, MetaValue>;

/**
 * Tensor element types (ggml_type). moesaic reads F32, F16, BF16 and the block formats Q4_0, Q8_0, Q4_K,
 * Q5_K, Q6_K (src/tensor/quant/formats.ts); the rest are named for errors.
 */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
}

const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K',
  11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS',
  19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32',
  27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? `unknown type id ${type}`;
}

/** Elements per block and bytes per block of the types moesaic reads. */
export const BLOCK: Readonly<Record<number, { elems: number; bytes: number }>> = {
  [GgmlType.F32]: { elems: 1, bytes: 4 },
  [GgmlType.F16]: { elems: 1, bytes: 2 },
  [GgmlType.BF16]: { elems: 1, bytes: 2 },
  ...Object.fromEntries(Object.values(QUANT_FORMATS).map((f) => [f.ggml, { elems: f.block, bytes: f.bytes }])),
};

export function isDecodable(type: number): boolean {
  return BLOCK[type] !== undefined;
}

/** Bytes of a tensor of a decodable type (ne[0] must be a multiple of the block size). */
export function tensorBytes(type: number, ne: readonly number[]): number {
  const b = BLOCK[type]!;
  let n = 1;
  for (const d of ne) n *= d;
  return (n / b.elems) * b.bytes;
}

/** general.file_type values (llama_ftype) for the exports moesaic writes. */
export const FILE_TYPE = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_m: 15, q5_k_m: 17, q6_k: 18, bf16: 32 } as const;

/** tokenizer.ggml.token_type values (llama_token_type). */
export enum TokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** A metadata value as a number, or undefined when absent; a non-numeric value is an error for the caller. */
export function metaNumber(meta: Metadata, key: string): number | undefined {
  const v = meta.get(key)?.value;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

export function metaString(meta: Metadata, key: string): string | undefined {
  const v = meta.get(key)?.value;
  return typeof v === 'string' ? v : undefined;
}

export function metaArray(meta: Metadata, key: string): readonly MetaScalar[] | undefined {
  const v = meta.get(key)?.value;
  return Array.isArray(v) ? (v as readonly MetaScalar[]) : undefined;
}
