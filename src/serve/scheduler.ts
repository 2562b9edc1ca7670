import type { RoutingListener } from '../moe/moe-layer.js';
import { fail } from '../errors.js';
import { ApiError } from './api-error.js';

/** What the scheduler needs of a sequence (src/model/sequence.ts `Sequence`). */
export interface ServedSequence {
  readonly prompt: readonly number[];
  readonly generated: readonly number[];
  readonly done: boolean;
  readonly finishReason: 'stop' | 'length' | null;
  readonly remainingPrompt: number;
  readonly kvBytes: number;
  release(): void;
}

/** Sampling and stop rule of one request (the model's SequenceOptions). */
export interface RequestOptions {
  readonly maxTokens: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly stop?: readonly string[];
  readonly stopAtEos?: boolean;
}

/** What the scheduler needs of a model (src/model/model.ts `Model`): sequences and the step loop. */
export interface SteppedModel<S extends ServedSequence> {
  newSequence(prompt: readonly number[], opts: RequestOptions): S;
  step(work: readonly { seq: S; tokens: number }[], opts: { onRouting?: RoutingListener }): readonly { seq: S; id: number; text: string }[];
}

/**
 * Tokens in one step by default (`--max-step-tokens`). The step budget bounds how long one step can
 * stall the decoding sequences while prompts are prefilled (Sarathi-Serve's token budget).
 */
export const DEFAULT_MAX_STEP_TOKENS = 512;

export interface SchedulerLimits {
  /** sequences in one step at most */
  readonly maxBatch: number;
  /** tokens in one step at most: decode tokens of running sequences + prefill chunks */
  readonly maxStepTokens: number;
  /** bytes of KV cache that running sequences may hold together */
  readonly kvMemory: number;
  /** requests waiting for admission at most; more are refused (429) */
  readonly maxQueue: number;
}

/** Receives one request's output as it is produced. */
export interface TokenSink {
  token(id: number, text: string): void;
  finish(reason: 'stop' | 'length'): void;
  fail(err: Error): void;
}

/** One step's shape, for metrics and the dashboard. */
export interface StepReport {
  readonly sequences: number;
  readonly tokens: number;
  readonly decodeOnly: boolean;
  readonly queue: number;
  readonly kvBytes: number;
  readonly emitted: number;
}

interface Job<S extends ServedSequence> {
  readonly prompt: readonly number[];
  readonly options: RequestOptions;
  readonly kvBytes: number;
  readonly sink: TokenSink;
  seq?: S;
  cancelled: boolean;
}

/** A submitted request: cancel it when the client goes away. */
export interface Ticket {
  cancel(): void;
}

/**
 * Continuous batching (Orca, Yu et al., OSDI 2022; vLLM's scheduler): every step runs one decode
 * token of each running sequence plus chunks of waiting prompts (chunked prefill, Sarathi), within
 * `maxStepTokens`; requests join and leave at step boundaries. Admission is first-come first-served
 * and bounded by the KV-memory budget (a sequence's cache is sized for prompt + max_tokens when it is
 * admitted); the rest wait in a bounded queue. Steps are synchronous; between two steps the loop
 * yields to the event loop (setImmediate), so sockets, cancellations and /health are served while a
 * long prompt is prefilled chunk by chunk.
 */
export class Scheduler<S extends ServedSequence> {
  private readonly waiting: Job<S>[] = [];
  private readonly running: Job<S>[] = [];
  private readonly jobOf = new Map<S, Job<S>>();
  private loopActive = false;
  private closed = false;

  constructor(
    private readonly model: SteppedModel<S>,
    readonly limits: SchedulerLimits,
    /** bytes of KV cache a request will hold (prompt + max_tokens, within the context) */
    private readonly kvBytesFor: (promptTokens: number, maxTokens: number) => number,
    private readonly hooks: { onRouting?: RoutingListener; beforeStep?: () => void; afterStep?: (r: StepReport) => void } = {},
  ) {
    // every running sequence decodes one token per step: a smaller step budget would starve the last ones
    if (limits.maxStepTokens < limits.maxBatch) fail('E_BAD_OPTION', `max step tokens (${limits.maxStepTokens}) must be at least the max batch (${limits.maxBatch})`);
  }

  get queueLength(): number {
    return this.waiting.length;
  }

  get runningCount(): number {
    return this.running.length;
  }

  /** KV bytes held by sequences now (0 when idle: every finished or cancelled sequence is freed). */
  get kvBytes(): number {
    let n = 0;
    for (const j of this.running) n += j.seq?.kvBytes ?? 0;
    return n;
  }

  /**
   * Admit a request at once if it fits, else queue it; throws ApiError 429 when it would have to wait
   * and the queue is full, 400 when it could never fit the KV budget.
   */
  submit(prompt: readonly number[], options: RequestOptions, sink: TokenSink): Ticket {
    if (this.closed) throw new ApiError(503, 'the server is shutting down', 'unavailable');
    const kvBytes = this.kvBytesFor(prompt.length, options.maxTokens);
    if (kvBytes > this.limits.kvMemory) {
      throw new ApiError(400, `the request needs ${kvBytes} bytes of KV cache (prompt ${prompt.length} + max_tokens ${options.maxTokens}), more than the server's --kv-memory of ${this.limits.kvMemory}: lower max_tokens or shorten the prompt`, 'context_too_large', 'max_tokens');
    }
    const job: Job<S> = { prompt, options, kvBytes, sink, cancelled: false };
    this.waiting.push(job);
    this.admit(); // joins now if it fits; it runs from the next step on
    if (this.waiting.length > this.limits.maxQueue && this.waiting.at(-1) === job) {
      this.waiting.pop();
      throw new ApiError(429, `the server is busy and its queue is full (${this.limits.maxQueue} waiting): retry later`, 'queue_full');
    }
    this.kick();
    return { cancel: () => this.cancel(job) };
  }

  /** Refuse new requests and fail the waiting and running ones (server shutdown). */
  close(): void {
    this.closed = true;
    const err = new ApiError(503, 'the server is shutting down', 'unavailable');
    for (const j of [...this.waiting, ...this.running]) {
      this.drop(j);
      j.sink.fail(err);
    }
  }

  private cancel(job: Job<S>): void {
    if (job.cancelled || (job.seq?.done ?? false)) return;
    this.drop(job);
  }

  /** Remove a job wherever it is and free its KV cache at once. */
  private drop(job: Job<S>): void {
    job.cancelled = true;
    remove(this.waiting, job);
    remove(this.running, job);
    if (job.seq) {
      this.jobOf.delete(job.seq);
      job.seq.release();
    }
  }

  private kick(): void {
    if (this.loopActive || this.closed) return;
    this.loopActive = true;
    setImmediate(() => this.loop());
  }

  private loop(): void {
    try {
      this.admit();
      if (this.running.length > 0) this.runStep();
    } catch (e) {
      // a step failed (e.g. non-finite logits): fail the sequences in it, keep serving the others
      for (const j of [...this.running]) {
        this.drop(j);
        j.sink.fail(e as Error);
      }
    }
    this.loopActive = false;
    if (this.running.length > 0 || this.waiting.length > 0) this.kick();
  }

  /** First come, first served: the head of the queue waits until its KV cache fits. */
  private admit(): void {
    let used = 0;
    for (const j of this.running) used += j.kvBytes;
    while (this.waiting.length > 0 && this.running.length < this.limits.maxBatch) {
      const job = this.waiting[0]!;
      if (used + job.kvBytes > this.limits.kvMemory) break;
      this.waiting.shift();
      try {
        job.seq = this.model.newSequence(job.prompt, job.options);
      } catch (e) {
        job.sink.fail(e as Error);
        continue;
      }
      if (job.seq.done) {
        job.seq.release();
        job.sink.finish(job.seq.finishReason ?? 'length');
        continue;
      }
      used += job.kvBytes;
      this.running.push(job);
      this.jobOf.set(job.seq, job);
    }
  }

  private runStep(): void {
    // decode tokens first (one per running sequence past its prompt), then prompt chunks in arrival order
    let budget = this.limits.maxStepTokens;
    const work: { seq: S; tokens: number }[] = [];
    for (const j of this.running) {
      if (j.seq!.remainingPrompt === 0 && budget > 0) {
        work.push({ seq: j.seq!, tokens: 1 });
        budget--;
      }
    }
    for (const j of this.running) {
      const rest = j.seq!.remainingPrompt;
      if (rest === 0 || budget === 0) continue;
      const n = Math.min(rest, budget);
      work.push({ seq: j.seq!, tokens: n });
      budget -= n;
    }
    if (work.length === 0) return;
    const decodeOnly = work.every((w) => w.seq.remainingPrompt === 0);
    this.hooks.beforeStep?.();
    const out = this.model.step(work, { onRouting: this.hooks.onRouting });
    for (const t of out) this.jobOf.get(t.seq)?.sink.token(t.id, t.text);
    for (let i = 0; i < this.running.length; ) {
      const j = this.running[i]!;
      if (!j.seq!.done) {
        i++;
        continue;
      }
      this.running.splice(i, 1);
      this.jobOf.delete(j.seq!);
      j.seq!.release();
      j.sink.finish(j.seq!.finishReason ?? 'stop');
    }
    this.hooks.afterStep?.({
      sequences: work.length,
      tokens: this.limits.maxStepTokens - budget,
      decodeOnly,
      queue: this.waiting.length,
      kvBytes: this.kvBytes,
      emitted: out.length,
    });
  }
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
