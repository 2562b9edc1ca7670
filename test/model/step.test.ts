import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import type { Model } from '../../src/model/model.js';
import { loadModel } from '../../src/model/model.js';

const dir = mkdtempSync(join(tmpdir(), 'moesaic-step-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

let cached: Model | undefined;
async function model(): Promise<Model> {
  if (!cached) {
    await generateModel({ arch: 'mixtral', size: 'tiny', out: join(dir, 'm'), seed: 11 });
    cached = await loadModel(join(dir, 'm'));
  }
  return cached;
}

async function alone(m: Model, prompt: readonly number[], opts: Parameters<Model['generate']>[1]): Promise<number[]> {
  const ids: number[] = [];
  for await (const t of m.generate(prompt, opts)) ids.push(t.id);
  return ids;
}

for (const sampling of [{ temperature: 0 }, { temperature: 0.9, seed: 5 }]) {
  test(`interleaved generate() calls on one model each get the ids they get alone (temperature ${sampling.temperature})`, async () => {
    const m = await model();
    const a = [5, 17, 300, 41];
    const b = [9, 250, 3];
    const opts = { maxTokens: 8, stopAtEos: false, ...sampling };
    const wantA = await alone(m, a, opts);
    const wantB = await alone(m, b, { ...opts, seed: 6 });
    const itA = m.generate(a, opts);
    const itB = m.generate(b, { ...opts, seed: 6 });
    const gotA: number[] = [];
    const gotB: number[] = [];
    // strictly alternate: A's prefill, B's prefill, A's decode, B's decode, ...
    for (;;) {
      const [ra, rb] = [await itA.next(), await itB.next()];
      if (!ra.done) gotA.push(ra.value.id);
      if (!rb.done) gotB.push(rb.value.id);
      if (ra.done && rb.done) break;
    }
    assert.deepEqual(gotA, wantA);
    assert.deepEqual(gotB, wantB);
    // and two consumers running at once (each awaiting between tokens) as a server's requests do
    const [concA, concB] = await Promise.all([alone(m, a, opts), alone(m, b, { ...opts, seed: 6 })]);
    assert.deepEqual(concA, wantA);
    assert.deepEqual(concB, wantB);
  });
}

test('a prompt prefilled in chunks over several steps generates what one whole prefill does', async () => {
  const m = await model();
  const prompt = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38];
  const want = await alone(m, prompt, { maxTokens: 5, stopAtEos: false });
  const seq = m.newSequence(prompt, { maxTokens: 5, stopAtEos: false });
  const other = m.newSequence([7, 7, 7], { maxTokens: 3, stopAtEos: false });
  const got: number[] = [];
  for (const chunk of [4, 3, 3]) {
    // mixed with another sequence's tokens in the same step
    const out = m.step(other.done ? [{ seq, tokens: chunk }] : [{ seq, tokens: chunk }, { seq: other, tokens: other.pendingTokens }]);
    got.push(...out.filter((o) => o.seq === seq).map((o) => o.id));
  }
  while (!seq.done) got.push(...m.step([{ seq, tokens: 1 }]).map((o) => o.id));
  assert.deepEqual(got, want);
  assert.equal(seq.finishReason, 'length');
});

test('an empty step runs and samples nothing; a step refuses more tokens than are pending', async () => {
  const m = await model();
  assert.deepEqual(m.step([]), []);
  const seq = m.newSequence([1, 2, 3], { maxTokens: 2 });
  assert.throws(() => m.step([{ seq, tokens: 4 }]), /1\.\.3 tokens/);
  assert.throws(() => m.step([{ seq, tokens: 1 }, { seq, tokens: 1 }]), /twice/);
});

test('KV bytes are counted per sequence and return to zero when released', async () => {
  const m = await model();
  const seq = m.newSequence([1, 2, 3], { maxTokens: 4 });
  const c = m.config;
  assert.equal(seq.kvBytes, 2 * c.numLayers * 7 * c.numKvHeads * c.headDim * 4);
  seq.release();
  assert.equal(seq.kvBytes, 0);
  assert.ok(seq.done);
});

test('a stop string ends the output right before it, with finish reason stop', async () => {
  const m = await model();
  const opts = { maxTokens: 24, stopAtEos: false };
  const full = m.newSequence('def main', opts);
  while (!full.done) m.step([{ seq: full, tokens: full.pendingTokens }]);
  const text = full.text;
  assert.ok(text.length >= 6, `need some output text, got ${JSON.stringify(text)}`);
  const stop = text.slice(3, 5);
  const cut = text.indexOf(stop);
  const seq = m.newSequence('def main', { ...opts, stop: [stop] });
  let streamed = '';
  while (!seq.done) for (const t of m.step([{ seq, tokens: seq.pendingTokens }])) streamed += t.text;
  assert.equal(seq.text, text.slice(0, cut));
  assert.equal(streamed, seq.text, 'the streamed pieces add up to the text');
  assert.equal(seq.finishReason, 'stop');
});

test('generate yields to the event loop between steps (a macrotask, so sockets and timers are served)', async () => {
  const m = await model();
  let turns = 0;
  let live = true;
  const tick = () => {
    turns++;
    if (live) setImmediate(tick);
  };
  setImmediate(tick);
  const seen: number[] = [];
  for await (const _ of m.generate([1, 2, 3], { maxTokens: 6, stopAtEos: false })) seen.push(turns);
  live = false;
  // with only microtask yields the immediate would never run until the loop ended
  assert.ok(seen[seen.length - 1]! >= 5, `event-loop turns seen while generating: ${seen.join(',')}`);
});

test('encode of an empty string is [] (the CLI still refuses an empty prompt)', async () => {
  const m = await model();
  assert.deepEqual(m.encode(''), []);
  assert.throws(() => m.newSequence(''), /encodes to no tokens/);
});
