// The bench's timing protocol with a fake clock: each engine step advances the clock by a known
// amount, so the measured prefill, time to first token and decode must be exactly those amounts.
// A protocol that let any prefill work into the decode time (or decode into prefill) fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFigures } from '../../src/bench/generate-bench.js';
import type { RunResult } from '../../src/bench/protocol.js';
import { timeGeneration } from '../../src/bench/timing.js';

/** A clock that only moves when a fake engine step says so. */
function fakeEngine(prefillMs: number, sampleMs: number, decodeMs: number) {
  let now = 0;
  const calls: string[] = [];
  const clock = { now: () => now };
  const steps = {
    prefill: () => {
      calls.push('prefill');
      now += prefillMs;
    },
    sampleFirst: () => {
      calls.push('sample');
      now += sampleMs;
      return 100;
    },
    decode: (last: number) => {
      calls.push(`decode ${last}`);
      now += decodeMs;
      return last + 1;
    },
  };
  return { clock, steps, calls };
}

test('decode time excludes prefill and first-token sampling; ttft includes both', () => {
  const { clock, steps, calls } = fakeEngine(700, 3, 20);
  const t = timeGeneration(clock, steps, 6);
  assert.equal(t.prefillMs, 700);
  assert.equal(t.ttftMs, 703);
  assert.equal(t.decodeMs, 5 * 20);
  assert.deepEqual(t.ids, [100, 101, 102, 103, 104, 105]);
  assert.deepEqual(calls, ['prefill', 'sample', 'decode 100', 'decode 101', 'decode 102', 'decode 103', 'decode 104']);
});

test('one generated token: no decode step and zero decode time', () => {
  const { clock, steps, calls } = fakeEngine(50, 1, 1000);
  const t = timeGeneration(clock, steps, 1);
  assert.equal(t.decodeMs, 0);
  assert.deepEqual(calls, ['prefill', 'sample']);
});

test('figures of a fake run: decode tok/s counts genTokens - 1 steps over decode time only', () => {
  const { clock, steps } = fakeEngine(2000, 5, 25);
  const t = timeGeneration(clock, steps, 9);
  const run: RunResult = { engine: 'moesaic', ...t, decodeSteps: 8, genTokens: 9, promptTokens: 64, peakRssBytes: 2 ** 30, build: 'fake', threads: 1 };
  const f = runFigures(run, { decodeBytesPerToken: 2e8, macsPerToken: 1e8, prefillAttentionMacs: 0 });
  assert.equal(f.decode_tok_s, 40); // 8 steps in 200 ms, however long the 2 s prefill took
  assert.equal(f.prefill_tok_s, 32); // 64 tokens in 2 s
  assert.equal(f.ttft_ms, 2005);
  assert.equal(f.decode_gb_s, 8); // 40 tok/s x 200 MB
  assert.equal(f.peak_rss_mib, 1024);
});
