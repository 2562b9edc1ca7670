/**
 * An independent, deliberately simple safetensors reader for tests: reads whole files with fs
 * (test checkpoints are tiny), parses the 8-byte little-endian header length and the JSON header,
 * and converts F32 / BF16 / F16 tensors to Float64Array. Follows model.safetensors.index.json when
 * the checkpoint is sharded. Shares no code with the engine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RefTensor {
  shape: number[];
  data: Float64Array; // row-major
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (or zero)
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Reads every tensor of one .safetensors file. */
export function readSafetensorsFile(path: string): Map<string, RefTensor> {
  const buf = readFileSync(path);
  if (buf.length < 8) throw new Error(`${path}: shorter than the 8-byte header length`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (8 + headerLen > buf.length) throw new Error(`${path}: header length ${headerLen} past end of file`);
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  const base = 8 + headerLen;
  const out = new Map<string, RefTensor>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = raw as HeaderEntry;
    const [begin, end] = e.data_offsets;
    const count = e.shape.reduce((a, b) => a * b, 1);
    const bytes = buf.subarray(base + begin, base + end);
    if (base + end > buf.length) throw new Error(`${path}: tensor ${name} past end of file`);
    const data = new Float64Array(count);
    if (e.dtype === 'F32') {
      if (bytes.length !== count * 4) throw new Error(`${name}: size mismatch`);
      for (let i = 0; i < count; i++) data[i] = bytes.readFloatLE(i * 4);
    } else if (e.dtype === 'BF16') {
      if (bytes.length !== count * 2) throw new Error(`${name}: size mismatch`);
      const tmp = Buffer.alloc(4);
      for (let i = 0; i < count; i++) {
        tmp.writeUInt32LE(bytes.readUInt16LE(i * 2) << 16 >>> 0, 0);
        data[i] = tmp.readFloatLE(0);
      }
    } else if (e.dtype === 'F16') {
      if (bytes.length !== count * 2) throw new Error(`${name}: size mismatch`);
      for (let i = 0; i < count; i++) data[i] = f16ToNumber(bytes.readUInt16LE(i * 2));
    } else {
      throw new Error(`${name}: unsupported dtype ${e.dtype}`);
    }
    out.set(name, { shape: e.shape.slice(), data });
  }
  return out;
}

/** Reads all tensors of a checkpoint directory: model.safetensors, or the shards of the index. */
export function readCheckpoint(dir: string): Map<string, RefTensor> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(indexPath)) {
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    const files = [...new Set(Object.values(index.weight_map))].sort();
    const all = new Map<string, RefTensor>();
    for (const f of files) {
      for (const [name, t] of readSafetensorsFile(join(dir, f))) {
        if (index.weight_map[name] !== f) throw new Error(`${name} found in ${f} but indexed in ${index.weight_map[name]}`);
        all.set(name, t);
      }
    }
    for (const name of Object.keys(index.weight_map)) {
      if (!all.has(name)) throw new Error(`${name}: in the index but in no shard`);
    }
    return all;
  }
  return readSafetensorsFile(join(dir, 'model.safetensors'));
}

/** Header of one file without reading tensor data (used by tests that rewrite checkpoints). */
export function readHeader(path: string): { headerLen: number; header: Record<string, unknown> } {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  return { headerLen, header: JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) };
}
