import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';
import type { Source } from './init.js';

/**
 * Streaming safetensors writer. A file is: 8-byte little-endian header length N, N bytes of JSON
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, space-padded so the data
 * starts 8-byte aligned), then the tensors back to back. Tensors are produced chunk by chunk, so a
 * checkpoint of any size is written with a few MB of memory.
 *
 * safetensors forbids gaps between tensors, so alignment of every tensor is kept by requiring each
 * tensor's byte size to be a multiple of 8 (all synthetic shapes are) rather than by padding.
 */
export type StDType = 'F32' | 'BF16';

export interface TensorToWrite {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: StDType;
  /** Called once, when the tensor's turn comes, to get the producer of its values. */
  open(): Source;
}

const ELEM_BYTES: Record<StDType, number> = { F32: 4, BF16: 2 };
/** Elements generated per chunk: 4 MB of f32 scratch. */
const CHUNK = 1 << 20;

export function tensorBytes(t: Pick<TensorToWrite, 'shape' | 'dtype'>): number {
  return t.shape.reduce((a, b) => a * b, 1) * ELEM_BYTES[t.dtype];
}

/** Header bytes (length prefix included) for tensors laid out in the given order. */
export function buildHeader(tensors: readonly Pick<TensorToWrite, 'name' | 'shape' | 'dtype'>[]): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const n = tensorBytes(t);
    if (n % 8 !== 0) fail('E_IO', `tensor ${t.name} has ${n} bytes, not a multiple of 8: its successors would be misaligned`);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  const len = Buffer.byteLength(json);
  json += ' '.repeat((8 - (len % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + jsonBytes.length);
  out.writeBigUInt64LE(BigInt(jsonBytes.length), 0);
  jsonBytes.copy(out, 8);
  return out;
}

/**
 * Writes one .safetensors file, generating each tensor's values as it goes. Returns the data bytes.
 * Yields to the event loop between tensors, so an interrupt can remove the unfinished folder.
 */
export async function writeSafetensorsFile(path: string, tensors: readonly TensorToWrite[]): Promise<number> {
  const fd = openSync(path, 'w');
  let total = 0;
  try {
    writeSync(fd, buildHeader(tensors));
    const f32 = new Float32Array(CHUNK);
    const bits = new Uint32Array(f32.buffer);
    const bf16 = new Uint16Array(CHUNK);
    for (const t of tensors) {
      await new Promise((r) => setImmediate(r));
      const source = t.open();
      let left = t.shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, CHUNK);
        const chunk = f32.subarray(0, n);
        source(chunk);
        if (t.dtype === 'F32') {
          writeAll(fd, new Uint8Array(f32.buffer, 0, n * 4));
        } else {
          // round to nearest even, as torch's .to(bfloat16) (same rule as f32ToBf16 in tensor/dtype.ts,
          // inlined because this loop runs for every weight of the bench model); values are finite
          for (let i = 0; i < n; i++) {
            const u = bits[i]!;
            bf16[i] = ((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
          }
          writeAll(fd, new Uint8Array(bf16.buffer, 0, n * 2));
        }
        left -= n;
      }
      total += tensorBytes(t);
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Splits tensors into shards the way transformers' save_pretrained does: in order, a new shard starts
 * when adding the next tensor would push the current one past maxBytes; a tensor larger than maxBytes
 * gets a shard of its own.
 */
export function planShards<T extends Pick<TensorToWrite, 'shape' | 'dtype'>>(tensors: readonly T[], maxBytes: number): T[][] {
  const shards: T[][] = [];
  let cur: T[] = [];
  let size = 0;
  for (const t of tensors) {
    const n = tensorBytes(t);
    if (cur.length > 0 && size + n > maxBytes) {
      shards.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += n;
  }
  if (cur.length > 0) shards.push(cur);
  return shards;
}

/** "model-00001-of-00003.safetensors", as transformers names shards. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Writes model.safetensors, or when the data exceeds maxShardBytes, numbered shards plus
 * model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map": {name: file}}, keys sorted,
 * 2-space indent and a final newline, as transformers writes it). Returns the file names written.
 */
export async function writeWeights(
  dir: string,
  tensors: readonly TensorToWrite[],
  maxShardBytes: number,
  onProgress?: (msg: string) => void,
): Promise<string[]> {
  const shards = planShards(tensors, maxShardBytes);
  if (shards.length <= 1) {
    const data = await writeSafetensorsFile(join(dir, 'model.safetensors'), tensors);
    onProgress?.(`wrote model.safetensors (${mb(data)} MB)`);
    return ['model.safetensors'];
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, shard] of shards.entries()) {
    const file = shardFileName(i, shards.length);
    const data = await writeSafetensorsFile(join(dir, file), shard);
    totalSize += data;
    for (const t of shard) weightMap[t.name] = file;
    files.push(file);
    onProgress?.(`wrote ${file} (${mb(data)} MB)`);
  }
  const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]!]));
  const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n');
  files.push('model.safetensors.index.json');
  return files;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
