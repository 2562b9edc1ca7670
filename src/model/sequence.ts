import { fail } from '../errors.js';
import { Detokenizer } from './detokenizer.js';
import type { KvCache } from './kv-cache.js';
import type { SamplingOptions } from './sampling.js';
import { Sampler } from './sampling.js';

export interface SequenceOptions extends SamplingOptions {
  /** tokens to generate at most (default 64) */
  readonly maxTokens?: number;
  /** stop at an end-of-sequence token (default true) */
  readonly stopAtEos?: boolean;
  /** stop when the output text contains one of these; the text ends before it (OpenAI's `stop`) */
  readonly stop?: readonly string[];
}

export type FinishReason = 'stop' | 'length';

/**
 * One generation request's state: its ids, KV cache, sampler, stop rule and streaming detokenizer.
 * Everything that differs between concurrent requests lives here, never in the model, so any number of
 * sequences can share one model and be stepped together (continuous batching) or apart.
 */
export class Sequence {
  readonly prompt: readonly number[];
  readonly generated: number[] = [];
  /** prompt tokens already run (in the cache) */
  prefilled = 0;
  finishReason: FinishReason | null = null;
  /** the output text so far (ends before a stop string; a held-back partial match is not included) */
  text = '';
  private readonly sampler: Sampler;
  private readonly maxTokens: number;
  private readonly eos: ReadonlySet<number>;
  private readonly stop: readonly string[];
  private readonly detok: Detokenizer;
  /** decoded text not yet shown: it may be the start of a stop string */
  private held = '';
  private released = false;

  constructor(
    prompt: readonly number[],
    readonly cache: KvCache,
    opts: SequenceOptions,
    eosTokenIds: readonly number[],
    decode: (ids: readonly number[]) => string,
  ) {
    this.prompt = prompt;
    this.maxTokens = opts.maxTokens ?? 64;
    if (!Number.isInteger(this.maxTokens) || this.maxTokens < 0) fail('E_BAD_OPTION', `max tokens must be an integer >= 0, got ${this.maxTokens}`);
    this.sampler = new Sampler(opts);
    this.eos = new Set(opts.stopAtEos === false ? [] : eosTokenIds);
    this.stop = (opts.stop ?? []).filter((s) => s.length > 0);
    this.detok = new Detokenizer(decode);
    if (this.maxTokens === 0) this.finishReason = 'length';
  }

  get done(): boolean {
    return this.finishReason !== null;
  }

  /** prompt tokens still to prefill */
  get remainingPrompt(): number {
    return this.prompt.length - this.prefilled;
  }

  /** tokens the next step can run for this sequence: the rest of the prompt, or 1 (the last sampled token) */
  get pendingTokens(): number {
    if (this.done) return 0;
    return this.remainingPrompt > 0 ? this.remainingPrompt : 1;
  }

  /** bytes of its KV cache (a scheduler's budget); 0 once released */
  get kvBytes(): number {
    return this.released ? 0 : this.cache.bytes;
  }

  /** The ids of the next `tokens` pending tokens (a prefill chunk, or the last sampled token). */
  nextIds(tokens: number): readonly number[] {
    if (this.done) fail('E_BAD_INPUT', 'the sequence is finished');
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.pendingTokens) {
      fail('E_BAD_INPUT', `a step can run 1..${this.pendingTokens} tokens of this sequence, got ${tokens}`);
    }
    if (this.remainingPrompt > 0) return this.prompt.slice(this.prefilled, this.prefilled + tokens);
    return [this.generated[this.generated.length - 1]!];
  }

  /** Bookkeeping after a step ran `tokens` of this sequence. */
  advance(tokens: number): void {
    if (this.remainingPrompt > 0) this.prefilled += tokens;
  }

  /** Sample the next token from its logits row; returns the id and the text it adds. */
  sample(logits: Float32Array): { id: number; text: string } {
    const id = this.sampler.sample(logits);
    this.generated.push(id);
    let text = this.held + this.detok.push(this.generated);
    this.held = '';
    if (this.stop.length > 0) {
      const all = this.text + text;
      const hit = firstStop(all, this.stop, this.text.length - maxLen(this.stop));
      if (hit >= 0) {
        text = all.slice(this.text.length, hit);
        this.finishReason = 'stop';
      } else {
        const keep = partialStopSuffix(all, this.stop);
        this.held = text.slice(text.length - Math.min(keep, text.length));
        text = text.slice(0, text.length - this.held.length);
      }
    }
    this.text += text;
    if (!this.done) {
      if (this.eos.has(id)) this.finishReason = 'stop';
      else if (this.generated.length >= this.maxTokens || this.cache.length >= this.cache.capacity) this.finishReason = 'length';
    }
    if (this.done && this.held) {
      text += this.held; // no stop string completed: the held-back text was output after all
      this.text += this.held;
      this.held = '';
    }
    return { id, text };
  }

  /** Frees the KV cache and finishes the sequence (a client that went away). */
  release(): void {
    this.released = true;
    this.finishReason ??= 'stop';
    this.cache.free();
  }
}

function maxLen(stops: readonly string[]): number {
  return stops.reduce((m, s) => Math.max(m, s.length), 0);
}

/** Index of the earliest stop string in `text` at or after `from`, or -1. */
function firstStop(text: string, stops: readonly string[], from: number): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, from));
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of a stop string (to hold back). */
function partialStopSuffix(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(s.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}
