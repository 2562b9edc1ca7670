import { existsSync, statSync } from 'node:fs';
import { fail } from '../errors.js';
import type { ModelConfig } from './config.js';
import { readConfig } from './config.js';
import { isGgufFile, openGguf } from './gguf/open.js';
import { TextTokenizer } from './tokenizer.js';
import type { TensorStore } from './weight-store.js';
import { openSafetensorsFolder } from './weight-store.js';

/** What a model is loaded from, whatever the format: parsed config, tensors by HF name, tokenizer. */
export interface Checkpoint {
  readonly config: ModelConfig;
  readonly tensors: TensorStore;
  readonly tokenizer: TextTokenizer | null;
}

/** A Hugging Face folder (config.json + safetensors + tokenizer.json), or a GGUF file (docs/gguf.md). */
export function openCheckpoint(path: string, mapFile: (path: string) => ArrayBuffer): Checkpoint {
  if (!existsSync(path)) fail('E_IO', `model path ${path} does not exist`);
  if (!statSync(path).isDirectory()) {
    if (path.toLowerCase().endsWith('.gguf') || isGgufFile(path)) return openGguf(path, mapFile);
    fail('E_BAD_CHECKPOINT', `${path} is neither a Hugging Face checkpoint folder nor a GGUF file`);
  }
  const config = readConfig(path);
  return { config, tensors: openSafetensorsFolder(path, mapFile), tokenizer: TextTokenizer.load(path) };
}
