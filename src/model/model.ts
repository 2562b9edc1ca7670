import { fail } from '../errors.js';
import type { RoutingObserver } from '../moe/moe-layer.js';
import { dispatchPolicy } from '../moe/policies.js';
import { routerForConfig } from '../moe/routers.js';
import type { Backend } from '../tensor/backend.js';
import type { BackendName } from '../tensor/backends.js';
import { fileMapper, getBackend } from '../tensor/backends.js';
import type { ModelConfig } from './config.js';
import { openCheckpoint } from './checkpoint.js';
import { KvCache } from './kv-cache.js';
import { resolveWeights } from './layer-weights.js';
import type { SamplingOptions } from './sampling.js';
import { Sampler } from './sampling.js';
import type { TextTokenizer } from './tokenizer.js';
import { Transformer } from './transformer.js';

export interface LoadOptions {
  /** 'cpu' (native kernels, default) or 'ref' (TypeScript reference, slow) */
  readonly backend?: BackendName;
  /** kernel threads (default: the addon's default, one per core) */
  readonly threads?: number;
  /** dispatch policy name (default 'dynamic') */
  readonly gating?: string;
  /** static gating's capacity fraction */
  readonly capacityFactor?: number;
  /** routing function override (default: the checkpoint family's own) */
  readonly router?: string;
}

export interface GenerateOptions extends SamplingOptions {
  /** tokens to generate at most (default 64) */
  readonly maxTokens?: number;
  /** stop at an end-of-sequence token (default true) */
  readonly stopAtEos?: boolean;
  /** sees every MoE routing decision (trace recording) */
  readonly observer?: RoutingObserver;
}

export interface GeneratedToken {
  readonly id: number;
  /** text this token adds to the decoded output ('' without a tokenizer or mid-character) */
  readonly text: string;
}

/** A loaded checkpoint: config, memory-mapped weights, tokenizer and a forward pass. */
export class Model {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer | null,
    readonly transformer: Transformer,
  ) {}

  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    const backend: Backend = await getBackend(options.backend ?? 'cpu', options.threads);
    const { config, tensors, tokenizer } = openCheckpoint(dir, await fileMapper(options.backend ?? 'cpu'));
    const weights = resolveWeights(config, tensors);
    const router = routerForConfig(config, options.router);
    const policy = dispatchPolicy(options.gating ?? 'dynamic', { capacityFactor: options.capacityFactor });
    const transformer = new Transformer(config, weights, backend, router, policy);
    return new Model(dir, config, tokenizer, transformer);
  }

  /** Token ids of a text prompt (needs tokenizer.json). */
  encode(text: string): number[] {
    if (!this.tokenizer) fail('E_BAD_INPUT', `${this.dir} has no tokenizer.json: pass token ids instead of text`);
    const ids = this.tokenizer.encode(text);
    if (ids.length === 0) fail('E_BAD_INPUT', 'the prompt encodes to no tokens');
    return ids;
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer && ids.length > 0 ? this.tokenizer.decode(ids) : '';
  }

  /** Logits for every position of `ids`, one row of vocab_size floats per position. */
  logits(ids: readonly number[], observer?: RoutingObserver): Float32Array[] {
    this.checkContext(ids.length);
    const cache = this.newCache(ids.length);
    const flat = this.transformer.forward(ids, cache, { allLogits: true, observer });
    const V = this.config.vocabSize;
    return ids.map((_, t) => flat.slice(t * V, (t + 1) * V)); // copies: the forward's buffer is reused
  }

  /**
   * Prefill the prompt, then decode one token at a time with the KV cache, yielding each new token
   * and the text it adds. Stops at EOS, at maxTokens, or when the context is full.
   */
  async *generate(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken> {
    const ids = typeof prompt === 'string' ? this.encode(prompt) : [...prompt];
    const maxTokens = opts.maxTokens ?? 64;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) fail('E_BAD_OPTION', `max tokens must be an integer >= 0, got ${maxTokens}`);
    this.checkContext(ids.length);
    if (maxTokens === 0) return;
    const sampler = new Sampler(opts);
    const cache = this.newCache(Math.min(this.config.maxPositions, ids.length + maxTokens));
    const eos = new Set(opts.stopAtEos === false ? [] : this.config.eosTokenIds);
    const generated: number[] = [];
    // Streaming text: decode the tokens since the last newline (as Hugging Face's TextStreamer does),
    // not the whole output each step, and hold back a trailing partial UTF-8 character until the next
    // token completes it. Decoding a window rather than single tokens keeps tokenizers whose pieces
    // decode differently alone (SentencePiece's leading spaces) right.
    let windowStart = 0;
    let shown = '';
    let logits = this.transformer.forward(ids, cache, { observer: opts.observer });
    for (;;) {
      const id = sampler.sample(logits);
      generated.push(id);
      const text = this.decode(generated.slice(windowStart));
      const ready = text.endsWith('\uFFFD') ? shown : text;
      yield { id, text: ready.startsWith(shown) ? ready.slice(shown.length) : '' };
      if (ready.startsWith(shown)) shown = ready;
      if (shown.endsWith('\n')) {
        windowStart = generated.length;
        shown = '';
      }
      if (eos.has(id) || generated.length >= maxTokens || cache.length >= cache.capacity) return;
      logits = this.transformer.forward([id], cache, { observer: opts.observer });
      await Promise.resolve(); // let consumers interleave (streaming, servers)
    }
  }

  /**
   * Generate for several prompts at once: one batched prefill step, then decode steps in which every
   * unfinished sequence contributes one token, so each MoE layer routes the whole batch together (as
   * a server batching requests would). Sequence i samples with seed + i. Returns the generated ids.
   */
  generateBatch(prompts: readonly (readonly number[])[], opts: GenerateOptions = {}): number[][] {
    const maxTokens = opts.maxTokens ?? 64;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) fail('E_BAD_OPTION', `max tokens must be an integer >= 0, got ${maxTokens}`);
    for (const p of prompts) this.checkContext(p.length);
    const out: number[][] = prompts.map(() => []);
    if (maxTokens === 0 || prompts.length === 0) return out;
    const eos = new Set(opts.stopAtEos === false ? [] : this.config.eosTokenIds);
    const seqs = prompts.map((p, i) => ({
      index: i,
      ids: [...p] as number[],
      cache: this.newCache(Math.min(this.config.maxPositions, p.length + maxTokens)),
      sampler: new Sampler({ ...opts, seed: (opts.seed ?? 0) + i }),
    }));
    let active = seqs;
    let logits = this.transformer.forwardBatch(active, { observer: opts.observer });
    for (;;) {
      const V = this.config.vocabSize;
      const next = [];
      for (const [row, s] of active.entries()) {
        const id = s.sampler.sample(logits.subarray(row * V, (row + 1) * V));
        out[s.index]!.push(id);
        const done = eos.has(id) || out[s.index]!.length >= maxTokens || s.cache.length >= s.cache.capacity;
        if (!done) next.push({ ...s, ids: [id] });
      }
      if (next.length === 0) return out;
      active = next;
      logits = this.transformer.forwardBatch(active, { observer: opts.observer });
    }
  }

  private checkContext(tokens: number): void {
    if (tokens === 0) fail('E_BAD_INPUT', 'no input tokens');
    if (tokens > this.config.maxPositions) {
      fail('E_BAD_INPUT', `prompt of ${tokens} tokens exceeds the context of ${this.config.maxPositions} positions (max_position_embeddings)`);
    }
  }

  private newCache(capacity: number): KvCache {
    const c = this.config;
    return new KvCache(c.numLayers, capacity, c.numKvHeads * c.headDim);
  }
}

/** Load a Hugging Face MoE checkpoint folder. */
export function loadModel(dir: string, options: LoadOptions = {}): Promise<Model> {
  return Model.load(dir, options);
}
