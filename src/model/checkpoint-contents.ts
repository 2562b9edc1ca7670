import type { ModelConfig } from './config.js';
import type { TextTokenizer } from './tokenizer.js';
import type { TensorStore } from './weight-store.js';

/**
 * What a model is loaded from, whatever the format: parsed config, tensors by HF name, tokenizer.
 * Its own module so that the format readers (gguf/open.ts) and the format dispatch (checkpoint.ts)
 * both depend on it, and not on each other in a cycle.
 */
export interface Checkpoint {
  readonly config: ModelConfig;
  readonly tensors: TensorStore;
  readonly tokenizer: TextTokenizer | null;
}
