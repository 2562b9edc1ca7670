import { fail } from '../errors.js';
import type { RoutingListener, RoutingObserver } from '../moe/moe-layer.js';
import { dispatchPolicy } from '../moe/policies.js';
import { LYNX_DEFAULTS, lynxRouter } from '../moe/lynx.js';
import { routerForConfig } from '../moe/routers.js';
import type { Backend } from '../tensor/backend.js';
import { fileMapper, getBackend } from '../tensor/backends.js';
import type { ModelConfig } from './config.js';
import { openCheckpoint } from './checkpoint.js';
import { KvCache, kvCacheBytes } from './kv-cache.js';
import { resolveWeights } from './layer-weights.js';
import type { RunOptions } from '../options/run-options.js';
import { resolveRunOptions } from '../options/run-options.js';
import type { SequenceOptions } from './sequence.js';
import { Sequence } from './sequence.js';
import type { TextTokenizer } from './tokenizer.js';
import { quantizeStore } from './gguf/quantize-store.js';
import { Transformer } from './transformer.js';
import { copyToHugePages, weightBytes } from './huge-page-weights.js';
import { availableMemoryBytes } from '../util/available-memory.js';
import { allocHugePages, releasePages } from '../tensor/cpu-backend.js';
import { EpRuntime, checkParallelOptions, defaultRankThreads, worldIfParallel } from '../parallel/ep-runtime.js';
import type { ExpertCache } from '../memory/expert-cache-setup.js';
import { expertCacheFor } from '../memory/expert-cache-setup.js';
import type { ExpertCacheStats } from '../memory/expert-stats.js';
import { MappedFiles } from '../memory/mapped-files.js';

/** How to load and run a model: the run-time options (src/options/run-options.ts), one field each. */
export type LoadOptions = RunOptions;

export interface GenerateOptions extends SequenceOptions {
  /** sees every MoE routing decision (trace recording) */
  readonly observer?: RoutingObserver;
}

export interface StepOptions {
  /** sees every MoE routing decision of the step */
  readonly observer?: RoutingObserver;
  /** sees each layer's routing decisions only (the fused decode step reports to it too) */
  readonly onRouting?: RoutingListener;
}

/** One sequence's share of a step: how many of its pending tokens to run (a prefill chunk, or 1). */
export interface StepWork {
  readonly seq: Sequence;
  readonly tokens: number;
}

/** A token sampled by a step, and the text it adds to its sequence's output. */
export interface StepToken {
  readonly seq: Sequence;
  readonly id: number;
  readonly text: string;
}

export interface GeneratedToken {
  readonly id: number;
  /** text this token adds to the decoded output ('' without a tokenizer or mid-character) */
  readonly text: string;
}

/** Resolves on the next turn of the event loop (a macrotask: sockets and timers run before it). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A loaded checkpoint: config, memory-mapped weights, tokenizer and a forward pass. */
export class Model {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer | null,
    readonly transformer: Transformer,
    /** this rank's side of expert parallelism (docs/parallel.md); undefined in a single-process run */
    readonly ep?: EpRuntime,
    /** the expert cache (--expert-cache / --expert-cache-slots), if any: docs/memory.md */
    readonly expertCache?: ExpertCache,
  ) {}

  /** What the expert cache did so far (hits, misses, bytes read, stalls...); undefined without one. */
  expertCacheStats(): ExpertCacheStats | undefined {
    return this.expertCache?.provider.stats();
  }

  /** Stops the expert cache's I/O threads (a model without one holds nothing to close). */
  close(): void {
    this.expertCache?.provider.close();
  }

  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    const opts = resolveRunOptions(options);
    const comm = worldIfParallel();
    checkParallelOptions(opts, comm !== null);
    const backend: Backend = await getBackend(opts.backend, opts.threads ?? (comm ? defaultRankThreads() : undefined), opts.matmulPrecision);
    const files = new MappedFiles(await fileMapper(opts.backend));
    const { config, tensors, tokenizer } = openCheckpoint(dir, files.map);
    const mapped = resolveWeights(config, opts.quantize ? quantizeStore(config, tensors, opts.quantize) : tensors);
    // An expert cache streams experts from the file and a rank reads only its own experts: both keep
    // the mapping. Otherwise the weights move into huge pages unless asked not to.
    const cached = opts.expertCache !== undefined || opts.expertCacheSlots !== undefined;
    const weights = opts.hugepages === 'on' && opts.backend === 'cpu' && !comm && !cached && fitsInMemory(mapped) ? copyToHugePages(mapped, allocHugePages, (a) => files.pathOf(a.buffer) !== undefined && releasePages(a)) : mapped;
    const exact = routerForConfig(config, opts.router);
    const router = opts.lynx === 'on' ? lynxRouter(exact, { threshold: opts.lynxThreshold ?? LYNX_DEFAULTS.threshold }) : exact;
    const policy = dispatchPolicy(opts.gating, { capacityFactor: opts.capacityFactor, blockSize: opts.blockSize });
    if (comm && (opts.expertCache !== undefined || opts.expertCacheSlots !== undefined)) {
      fail('E_BAD_OPTION', '--expert-cache with expert parallelism (--ranks) is not supported yet: a rank serves its experts memory-mapped');
    }
    const ep = comm ? await EpRuntime.create(comm, weights, policy, opts) : undefined;
    const expertCache = expertCacheFor(opts, config, weights, files, { router, backend });
    const transformer = new Transformer(config, weights, backend, router, ep?.policy ?? policy, ep?.experts ?? expertCache?.provider);
    ep?.attach(transformer);
    return new Model(dir, config, tokenizer, transformer, ep, expertCache);
  }

  /** Token ids of a text prompt (needs tokenizer.json); '' encodes to []. */
  encode(text: string): number[] {
    if (!this.tokenizer) fail('E_BAD_INPUT', `${this.dir} has no tokenizer.json: pass token ids instead of text`);
    return text.length === 0 ? [] : this.tokenizer.encode(text);
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
    return ids.map((_, t) => checkFinite(flat.slice(t * V, (t + 1) * V), this.dir, t)); // copies: the forward's buffer is reused
  }

  /**
   * A new generation request: the prompt (text or ids), its sampling and stop rule, and a KV cache
   * sized for prompt + maxTokens (within the context). Run it with `step`; free it with `release()`.
   */
  newSequence(prompt: string | readonly number[], opts: SequenceOptions = {}): Sequence {
    const ids = typeof prompt === 'string' ? this.encode(prompt) : [...prompt];
    if (typeof prompt === 'string' && ids.length === 0) fail('E_BAD_INPUT', 'the prompt encodes to no tokens');
    this.checkContext(ids.length);
    const capacity = sequenceCapacity(this.config, ids.length, opts.maxTokens ?? 64);
    return new Sequence(ids, this.newCache(capacity), opts, this.config.eosTokenIds, (g) => this.decode(g));
  }

  /**
   * One forward over any mix of prefill chunks and decode tokens of several sequences: their tokens
   * are stacked into one batch for the norms, projections and MoE layers, while attention runs per
   * sequence against its own KV cache. Each sequence whose prompt is complete after this step samples
   * one token, which is returned. `work` may be empty: the layers still run (with no tokens), so a rank
   * with nothing to do takes part in the exchanges between ranks. Synchronous: run steps one after
   * another (generate and the server yield to the event loop between steps).
   */
  step(work: readonly StepWork[], opts: StepOptions = {}): StepToken[] {
    const seen = new Set<Sequence>();
    const entries = work.map(({ seq, tokens }) => {
      if (seen.has(seq)) fail('E_BAD_INPUT', 'a sequence appears twice in one step');
      seen.add(seq);
      return { ids: seq.nextIds(tokens), cache: seq.cache };
    });
    const logits = this.transformer.forwardBatch(entries, { observer: opts.observer, onRouting: opts.onRouting });
    const V = this.config.vocabSize;
    const out: StepToken[] = [];
    work.forEach(({ seq, tokens }, i) => {
      seq.advance(tokens);
      if (seq.remainingPrompt > 0) return; // mid-prompt chunk: nothing to sample yet
      const row = checkFinite(logits.subarray(i * V, (i + 1) * V), this.dir, seq.prompt.length + seq.generated.length - 1);
      const { id, text } = seq.sample(row);
      out.push({ seq, id, text });
    });
    return out;
  }

  /**
   * Prefill the prompt, then decode one token at a time with the KV cache, yielding each new token
   * and the text it adds. Stops at EOS, a stop string, maxTokens, or when the context is full. Each
   * call owns its sequence, so concurrent calls on one model never see each other's state.
   */
  async *generate(prompt: string | readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken> {
    const seq = this.newSequence(prompt, opts);
    try {
      while (!seq.done) {
        for (const t of this.step([{ seq, tokens: seq.pendingTokens }], opts)) yield { id: t.id, text: t.text };
        if (!seq.done) await nextTurn();
      }
    } finally {
      seq.release();
    }
  }

  /**
   * Generate for several prompts at once: one batched prefill step, then decode steps in which every
   * unfinished sequence contributes one token, so each MoE layer routes the whole batch together (as
   * a server batching requests would). Sequence i samples with seed + i. Returns the generated ids.
   */
  async generateBatch(prompts: readonly (readonly number[])[], opts: GenerateOptions = {}): Promise<number[][]> {
    const seqs = prompts.map((p, i) => this.newSequence(p, { ...opts, seed: (opts.seed ?? 0) + i }));
    try {
      for (;;) {
        const work = seqs.filter((s) => !s.done).map((seq) => ({ seq, tokens: seq.pendingTokens }));
        if (work.length === 0) return seqs.map((s) => s.generated);
        this.step(work, opts);
        await nextTurn();
      }
    } finally {
      for (const s of seqs) s.release();
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

/** KV positions a sequence needs: its prompt plus the tokens it may generate, within the context. */
function sequenceCapacity(cfg: ModelConfig, promptTokens: number, maxTokens: number): number {
  return Math.min(cfg.maxPositions, promptTokens + (Number.isInteger(maxTokens) && maxTokens > 0 ? maxTokens : 0));
}

/** KV bytes `newSequence` allocates for a prompt and max tokens (what a scheduler budgets before admitting it). */
export function sequenceKvBytes(cfg: ModelConfig, promptTokens: number, maxTokens: number): number {
  return kvCacheBytes(cfg.numLayers, sequenceCapacity(cfg, promptTokens, maxTokens), cfg.numKvHeads * cfg.headDim);
}

/** A logits row with a NaN or infinity means broken weights or input: one clear error for every command. */
function checkFinite(row: Float32Array, model: string, position: number): Float32Array {
  for (let i = 0; i < row.length; i++) {
    if (!Number.isFinite(row[i]!)) fail('E_BAD_CHECKPOINT', `${model}: non-finite logits (NaN or Inf) at position ${position}: the weights are broken`);
  }
  return row;
}

/**
 * Whether a copy of the weights leaves room to spare: at most half of what the machine (or the memory
 * cgroup) can still give. A model larger than that stays memory-mapped, paged in by the kernel as
 * before, rather than pushing the machine into swap or the OOM killer.
 */
function fitsInMemory(weights: object): boolean {
  const free = availableMemoryBytes();
  return free === undefined || weightBytes(weights) <= free / 2;
}

/** Load a Hugging Face MoE checkpoint folder. */
export function loadModel(dir: string, options: LoadOptions = {}): Promise<Model> {
  return Model.load(dir, options);
}
