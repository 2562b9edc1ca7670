// The serving bench's load: seeded Poisson arrivals and mixed prompt lengths (the same load for every
// configuration), and the percentiles and rates its table reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, planLoad, summarize } from '../../src/bench/serve-load.js';

test('planLoad: reproducible from its seed, lengths from the list, ids in the vocabulary, exponential gaps at the rate', () => {
  const o = { requests: 4000, rate: 8, lengths: [8, 24, 64], maxTokens: 16, vocab: 512, seed: 5 };
  const a = planLoad(o);
  assert.deepEqual(planLoad(o), a);
  assert.notDeepEqual(planLoad({ ...o, seed: 6 }).requests[1], a.requests[1]);
  const seen = new Set<number>();
  for (const r of a.requests) {
    seen.add(r.prompt.length);
    assert.ok(o.lengths.includes(r.prompt.length));
    assert.ok(r.prompt.every((id) => Number.isInteger(id) && id >= 3 && id < o.vocab));
  }
  assert.equal(seen.size, 3, 'every length occurs');
  const gaps = a.requests.slice(1).map((r, i) => r.arrivalMs - a.requests[i]!.arrivalMs);
  assert.ok(gaps.every((g) => g >= 0));
  const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
  assert.ok(Math.abs(mean - 125) < 10, `mean gap ${mean} ms, expected 1000 / 8 = 125`);
  // exponential: the standard deviation equals the mean
  const sd = Math.sqrt(gaps.reduce((x, g) => x + (g - mean) ** 2, 0) / gaps.length);
  assert.ok(Math.abs(sd / mean - 1) < 0.1, `sd/mean ${sd / mean}`);
  assert.ok(planLoad({ ...o, rate: 0 }).requests.every((r) => r.arrivalMs === 0), 'rate 0: all at once');
});

test('percentile (nearest rank, median for p50) and summarize', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100 shuffled order
  assert.equal(percentile(v, 0.99), 99);
  assert.equal(percentile(v, 0.5), 50.5);
  assert.equal(percentile([7], 0.99), 7);
  assert.ok(Number.isNaN(percentile([], 0.5)));
  const s = summarize(
    [
      { sentMs: 0, firstMs: 100, endMs: 400, tokens: 4, ok: true, queued: false },
      { sentMs: 50, firstMs: 250, endMs: 850, tokens: 4, ok: true, queued: false },
      { sentMs: 60, firstMs: NaN, endMs: 70, tokens: 0, ok: false, queued: true },
      { sentMs: 400, firstMs: NaN, endMs: 410, tokens: 0, ok: false, queued: false },
    ],
    1000,
    1,
  );
  assert.equal(s.tokensPerS, 8);
  assert.equal(s.requestsPerS, 2);
  assert.equal(s.ttftP50Ms, 150);
  assert.equal(s.tpotP50Ms, 150); // (300 / 3 + 600 / 3) / 2
  assert.equal(s.failed, 2);
  assert.equal(s.saturated, 1 / 3); // of the requests after the first client's: one of three queued
  assert.ok(Number.isNaN(summarize([], 1000, 1).saturated), 'no request beyond the clients: undefined');
});

