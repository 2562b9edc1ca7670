import { fail } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { DTYPE_BYTES } from '../tensor/dtype.js';
import type { Weight } from '../tensor/weight.js';
import { numel } from '../tensor/weight.js';

const FILE_DTYPES: Record<string, DType> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };

/** Largest header we accept: real headers are a few MB at most; this catches garbage lengths. */
const MAX_HEADER_BYTES = 256 * 1024 * 1024;

/**
 * Parse a safetensors file held in `buf` (normally a read-only memory map) and return a typed view
 * per tensor. Views point into `buf` (zero-copy); a tensor whose offset is not aligned to its element
 * size (legal in the format, rare in practice) is copied once, since typed arrays need alignment.
 * Every inconsistency is an E_BAD_CHECKPOINT naming the file and, where known, the tensor.
 */
export function parseSafetensors(buf: ArrayBuffer, path: string): Map<string, Weight> {
  const size = buf.byteLength;
  if (size < 8) fail('E_BAD_CHECKPOINT', `${path}: file is ${size} bytes, too short for a safetensors header`);
  const headerLen = Number(new DataView(buf).getBigUint64(0, true));
  if (headerLen > size - 8 || headerLen > MAX_HEADER_BYTES) {
    fail('E_BAD_CHECKPOINT', `${path}: header length ${headerLen} exceeds the file size ${size} (truncated or not safetensors)`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, headerLen))) as Record<string, unknown>;
  } catch (e) {
    fail('E_BAD_CHECKPOINT', `${path}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('E_BAD_CHECKPOINT', `${path}: header is not a JSON object`);
  }
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const tensors = new Map<string, Weight>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = FILE_DTYPES[String(e.dtype)];
    if (!dtype) {
      fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' has dtype ${String(e.dtype)}; supported: ${Object.keys(FILE_DTYPES).join(', ')}`);
    }
    const shape = e.shape;
    const offsets = e.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    if (end > dataSize) {
      fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' ends at byte ${end} of ${dataSize} data bytes (file truncated?)`);
    }
    if (end - begin !== bytes) {
      fail('E_BAD_CHECKPOINT', `${path}: tensor '${name}' spans ${end - begin} bytes but shape ${JSON.stringify(shape)} ${dtype} needs ${bytes}`);
    }
    tensors.set(name, { name, dtype, shape, data: view(buf, dataStart + begin, bytes, dtype) });
  }
  return tensors;
}

function view(buf: ArrayBuffer, offset: number, bytes: number, dtype: DType): Float32Array | Uint16Array {
  const elem = DTYPE_BYTES[dtype];
  const src = offset % elem === 0 ? buf : buf.slice(offset, offset + bytes);
  const at = offset % elem === 0 ? offset : 0;
  return dtype === 'f32' ? new Float32Array(src, at, bytes / 4) : new Uint16Array(src, at, bytes / 2);
}
