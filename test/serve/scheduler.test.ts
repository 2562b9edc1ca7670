// The continuous-batching scheduler against a scripted model that records every step's work:
// decode tokens first, prompt chunks within --max-step-tokens, joining and leaving at step boundaries,
// KV-budget admission, the bounded queue, and cancellation freeing a sequence at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestOptions, ServedSequence, SteppedModel, TokenSink } from '../../src/serve/scheduler.js';
import { Scheduler } from '../../src/serve/scheduler.js';
import { ApiError } from '../../src/serve/api-error.js';

class FakeSeq implements ServedSequence {
  readonly generated: number[] = [];
  prefilled = 0;
  released = false;
  finishReason: 'stop' | 'length' | null = null;
  constructor(
    readonly prompt: readonly number[],
    readonly maxTokens: number,
  ) {}
  get done(): boolean {
    return this.finishReason !== null;
  }
  get remainingPrompt(): number {
    return this.prompt.length - this.prefilled;
  }
  get kvBytes(): number {
    return this.released ? 0 : 100 * (this.prompt.length + this.maxTokens);
  }
  release(): void {
    this.released = true;
    this.finishReason ??= 'stop';
  }
}

/** Each step: prompt chunks advance, a sequence whose prompt is complete emits token id = its length. */
class FakeModel implements SteppedModel<FakeSeq> {
  readonly steps: string[] = [];
  newSequence(prompt: readonly number[], o: RequestOptions): FakeSeq {
    return new FakeSeq(prompt, o.maxTokens);
  }
  step(work: readonly { seq: FakeSeq; tokens: number }[]) {
    this.steps.push(work.map((w) => `${w.seq.prompt[0]}:${w.tokens}`).join(' '));
    const out = [];
    for (const { seq, tokens } of work) {
      if (seq.remainingPrompt > 0) seq.prefilled += tokens;
      if (seq.remainingPrompt > 0) continue;
      seq.generated.push(seq.generated.length);
      if (seq.generated.length >= seq.maxTokens) seq.finishReason = 'length';
      out.push({ seq, id: seq.generated.length - 1, text: 'x' });
    }
    return out;
  }
}

function sink(log: string[], name: string): TokenSink & { done: Promise<string> } {
  let resolve!: (s: string) => void;
  const done = new Promise<string>((r) => (resolve = r));
  return {
    done,
    token: (id) => log.push(`${name}#${id}`),
    finish: (reason) => resolve(reason),
    fail: (err) => resolve(`failed: ${err.message}`),
  };
}

const prompt = (tag: number, n: number): number[] => [tag, ...Array.from({ length: n - 1 }, () => 0)];
const kvFor = (p: number, m: number): number => 100 * (p + m);

test('decode tokens first, then prompt chunks within max-step-tokens; requests join and leave at step boundaries', async () => {
  const model = new FakeModel();
  const s = new Scheduler(model, { maxBatch: 4, maxStepTokens: 4, kvMemory: 1e9, maxQueue: 8 }, kvFor);
  const log: string[] = [];
  const a = sink(log, 'a');
  s.submit(prompt(1, 6), { maxTokens: 3 }, a);
  const b = sink(log, 'b');
  s.submit(prompt(2, 3), { maxTokens: 2 }, b);
  assert.equal(await a.done, 'length');
  assert.equal(await b.done, 'length');
  assert.deepEqual(model.steps, [
    '1:4', // a's first chunk fills the step
    '1:2 2:2', // a's prompt ends (a samples), b starts
    '1:1 2:1', // a decodes; b's last prompt token (b samples)
    '1:1 2:1', // both decode; both finish
  ]);
  assert.equal(s.kvBytes, 0);
  assert.equal(s.runningCount, 0);
});

test('admission waits for KV memory; the queue is bounded (429); a request that can never fit is a 400', async () => {
  const model = new FakeModel();
  // each request below needs 100 * (2 + 2) = 400 bytes: two fit at a time
  const s = new Scheduler(model, { maxBatch: 8, maxStepTokens: 64, kvMemory: 800, maxQueue: 1 }, kvFor);
  const log: string[] = [];
  const sinks = [sink(log, 'a'), sink(log, 'b'), sink(log, 'c')];
  sinks.forEach((k, i) => s.submit(prompt(i + 1, 2), { maxTokens: 2 }, k));
  assert.equal(s.runningCount, 2);
  assert.equal(s.queueLength, 1);
  assert.throws(() => s.submit(prompt(9, 2), { maxTokens: 2 }, sink(log, 'd')), (e: unknown) => e instanceof ApiError && e.status === 429);
  assert.throws(() => s.submit(prompt(9, 2), { maxTokens: 7 }, sink(log, 'e')), (e: unknown) => e instanceof ApiError && e.status === 400 && /kv-memory/.test(e.message));
  for (const k of sinks) assert.equal(await k.done, 'length');
  // c joined only after a and b left: no step ran all three
  assert.ok(model.steps.every((st) => st.split(' ').length <= 2), model.steps.join(' | '));
  assert.ok(model.steps.some((st) => st.startsWith('3:')), 'c ran');
});

test('a cancelled request is freed at once and never stepped again; the others go on', async () => {
  const model = new FakeModel();
  const s = new Scheduler(model, { maxBatch: 8, maxStepTokens: 64, kvMemory: 1e9, maxQueue: 8 }, kvFor);
  const log: string[] = [];
  const a = sink(log, 'a');
  const ticket = s.submit(prompt(1, 2), { maxTokens: 1000 }, a);
  const b = sink(log, 'b');
  s.submit(prompt(2, 2), { maxTokens: 5 }, b);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const stepsBefore = model.steps.length;
  assert.ok(stepsBefore >= 1);
  ticket.cancel();
  assert.equal(s.runningCount, 1);
  assert.equal(await b.done, 'length');
  assert.ok(model.steps.slice(stepsBefore).every((st) => !st.includes('1:')), 'a was stepped after its cancel');
  assert.equal(s.kvBytes, 0);
});

test('a step budget below the batch size is refused (the last sequences would never decode)', () => {
  assert.throws(() => new Scheduler(new FakeModel(), { maxBatch: 8, maxStepTokens: 4, kvMemory: 1e9, maxQueue: 8 }, kvFor), /max step tokens \(4\) must be at least the max batch \(8\)/);
});
