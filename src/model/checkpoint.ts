import { existsSync, statSync } from 'node:fs';
import { fail } from '../errors.js';
import type { Checkpoint } from './checkpoint-contents.js';
import { requireRegularFile } from './checkpoint-files.js';
import { readConfig } from './config.js';
import { isGgufFile, openGguf } from './gguf/open.js';
import { TextTokenizer } from './tokenizer.js';
import { openSafetensorsFolder } from './weight-store.js';

export type { Checkpoint } from './checkpoint-contents.js';

/** A Hugging Face folder (config.json + safetensors + tokenizer.json), or a GGUF file (docs/gguf.md). */
export function openCheckpoint(path: string, mapFile: (path: string) => ArrayBuffer): Checkpoint {
  if (!existsSync(path)) fail('E_IO', `model path ${path} does not exist`);
  if (!statSync(path).isDirectory()) {
    requireRegularFile(path); // before the GGUF probe: opening a FIFO would block forever
    if (path.toLowerCase().endsWith('.gguf') || isGgufFile(path)) return openGguf(path, mapFile);
    fail('E_BAD_CHECKPOINT', `${path} is neither a Hugging Face checkpoint folder nor a GGUF file`);
  }
  const config = readConfig(path);
  return { config, tensors: openSafetensorsFolder(path, mapFile), tokenizer: TextTokenizer.load(path) };
}
