// The serving bench's load: seeded Poisson arrivals and mixed prompt lengths (the same load for every
// configuration), and the percentiles and rates its table reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allBusyMs, percentile, planLoad, summarize } from '../../src/bench/serve-load.js';

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
      { sentMs: 0, firstMs: 100, endMs: 400, tokens: 4, ok: true },
      { sentMs: 50, firstMs: 250, endMs: 850, tokens: 4, ok: true },
      { sentMs: 60, firstMs: NaN, endMs: 70, tokens: 0, ok: false },
    ],
    1000,
    2,
  );
  assert.equal(s.tokensPerS, 8);
  assert.equal(s.requestsPerS, 2);
  assert.equal(s.ttftP50Ms, 150);
  assert.equal(s.tpotP50Ms, 150); // (300 / 3 + 600 / 3) / 2
  assert.equal(s.failed, 1);
  assert.equal(s.saturated, 0.35); // two or more in flight over [50, 400): 350 of 1000 ms
});

test('allBusyMs: the time during which every client has a request in flight', () => {
  const t = (sentMs: number, endMs: number) => ({ sentMs, firstMs: sentMs, endMs, tokens: 1, ok: true });
  // two clients: [0, 100) and [40, 150) overlap over [40, 100); a third request [150, 200) runs alone
  assert.equal(allBusyMs([t(0, 100), t(40, 150), t(150, 200)], 2), 60);
  assert.equal(allBusyMs([t(0, 100), t(40, 150), t(150, 200)], 1), 200);
  // one client's next request starting as the previous ends is no gap
  assert.equal(allBusyMs([t(0, 100), t(100, 180)], 1), 180);
  assert.equal(allBusyMs([t(0, 100), t(0, 100), t(0, 100)], 4), 0);
});
