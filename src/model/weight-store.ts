import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fail } from '../errors.js';
import type { Weight } from '../tensor/weight.js';
import { readRegularJson, requireRegularFile } from './checkpoint-files.js';
import { parseSafetensors } from './safetensors.js';

/**
 * The tensors of a checkpoint under their Hugging Face names, whatever the file format. Lookups are
 * checked: a missing tensor or a wrong shape is an error naming the tensor and where it was sought.
 */
export class TensorStore {
  constructor(
    /** what the tensors came from, for error messages */
    readonly source: string,
    private readonly tensors: ReadonlyMap<string, Weight>,
  ) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The tensor, checked against the shape the architecture expects. */
  get(name: string, shape?: readonly number[]): Weight {
    const w = this.tensors.get(name);
    if (!w) fail('E_MISSING_TENSOR', `tensor '${name}' not found in ${this.source}`);
    if (shape && (shape.length !== w.shape.length || shape.some((d, i) => d !== w.shape[i]))) {
      fail('E_BAD_CHECKPOINT', `tensor '${name}' in ${this.source} has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return w;
  }

  /** The tensor if present, shape-checked. */
  optional(name: string, shape?: readonly number[]): Weight | undefined {
    return this.tensors.has(name) ? this.get(name, shape) : undefined;
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }
}

/**
 * All tensors of a Hugging Face folder: `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json`. Files are memory-mapped by `mapFile`, so opening a large model costs
 * page-table entries, not a copy; pages are read from disk the first time a kernel touches them.
 */
export function openSafetensorsFolder(dir: string, mapFile: (path: string) => ArrayBuffer): TensorStore {
  const index = join(dir, 'model.safetensors.index.json');
  let files: string[];
  if (existsSync(index)) {
    files = shardFiles(readRegularJson(index, 'E_BAD_CHECKPOINT'), index);
  } else if (existsSync(join(dir, 'model.safetensors'))) {
    files = ['model.safetensors'];
  } else {
    fail('E_BAD_CHECKPOINT', `${dir}: no model.safetensors or model.safetensors.index.json found`);
  }
  const tensors = new Map<string, Weight>();
  for (const file of files) {
    const path = join(dir, file);
    if (!existsSync(path)) fail('E_BAD_CHECKPOINT', `${path}: listed in the index but missing`);
    requireRegularFile(path); // mapping a FIFO would block forever
    for (const [name, w] of parseSafetensors(mapFile(path), path)) tensors.set(name, w);
  }
  return new TensorStore(`${dir} (${files.join(', ')})`, tensors);
}

/**
 * The shard files named by a `model.safetensors.index.json`: its `weight_map` must be a non-empty
 * object of tensor name -> file name, every file inside the checkpoint folder.
 */
function shardFiles(index: unknown, path: string): string[] {
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof index !== 'object' || index === null || Array.isArray(index)) fail('E_BAD_CHECKPOINT', `${path}: not a JSON object`);
  if (weightMap === undefined || weightMap === null) fail('E_BAD_CHECKPOINT', `${path}: missing 'weight_map'`);
  if (typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    fail('E_BAD_CHECKPOINT', `${path}: 'weight_map' must be an object of tensor name -> shard file, got ${Array.isArray(weightMap) ? 'an array' : JSON.stringify(weightMap)}`);
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  if (entries.length === 0) fail('E_BAD_CHECKPOINT', `${path}: 'weight_map' is empty (it lists no tensors)`);
  const bad = entries.find(([, f]) => typeof f !== 'string' || f === '');
  if (bad) fail('E_BAD_CHECKPOINT', `${path}: 'weight_map' entry '${bad[0]}' must name a shard file, got ${JSON.stringify(bad[1])}`);
  const files = [...new Set(entries.map(([, f]) => f as string))].sort();
  const outside = files.find((f) => isAbsolute(f) || f.split(/[\\/]/).includes('..'));
  if (outside !== undefined) fail('E_BAD_CHECKPOINT', `${path}: shard '${outside}' is not a file inside the checkpoint folder`);
  return files;
}
