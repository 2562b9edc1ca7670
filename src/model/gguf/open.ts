import { closeSync, openSync, readSync } from 'node:fs';
import type { Checkpoint } from '../checkpoint-contents.js';
import { parseConfig } from '../config.js';
import { TensorStore } from '../weight-store.js';
import { GGUF_MAGIC } from './format.js';
import { configFromGguf } from './metadata.js';
import { parseGguf } from './reader.js';
import { ggufWeights } from './tensors.js';
import { tokenizerFromGguf } from './tokenizer.js';

/**
 * A GGUF file as a moesaic checkpoint: metadata -> Hugging Face config (validated by parseConfig),
 * tensors -> HF names and shapes, embedded vocabulary -> tokenizer. The file is memory-mapped by
 * `mapFile`; see docs/gguf.md for what is read and what is refused.
 */
export function openGguf(path: string, mapFile: (path: string) => ArrayBuffer): Checkpoint {
  const buf = mapFile(path);
  const file = parseGguf(buf, path);
  const config = parseConfig(configFromGguf(file), `${path} (GGUF metadata)`);
  const tensors = new TensorStore(path, ggufWeights(file, buf, config));
  return { config, tensors, tokenizer: tokenizerFromGguf(file) };
}

/** Whether a file starts with the GGUF magic (so a GGUF is recognised whatever its extension). */
export function isGgufFile(path: string): boolean {
  const head = Buffer.alloc(4);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    return readSync(fd, head, 0, 4, 0) === 4 && head.readUInt32LE(0) === GGUF_MAGIC;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
