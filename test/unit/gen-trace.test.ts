import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRecords, genHeader, seededRandom, writeGenTrace, type GenTraceOptions } from '../../src/analysis/gen-trace.js';
import { readTrace, validateRecord, type TraceRecord } from '../../src/trace/format.js';
import { MoesaicError } from '../../src/errors.js';

const BASE: GenTraceOptions = { experts: 8, topK: 2, layers: 3, steps: 12, tokens: 5, skew: 1, locality: 0.5, correlation: 0.3, seed: 42 };

test('seededRandom is deterministic, in [0, 1) and roughly uniform', () => {
  const a = seededRandom(9);
  const b = seededRandom(9);
  const c = seededRandom(10);
  const xs = Array.from({ length: 20000 }, () => a());
  assert.deepEqual(Array.from({ length: 20000 }, () => b()), xs);
  assert.notEqual(c(), xs[0]);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`); // sd of the mean ~ 0.002
});

test('records: shape, validity, order; same seed same trace, other seed other trace', () => {
  const h = genHeader(BASE);
  const recs = [...generateRecords(BASE)];
  assert.equal(recs.length, BASE.steps * BASE.layers);
  recs.forEach((r, i) => {
    assert.equal(r.step, Math.floor(i / BASE.layers));
    assert.equal(r.layer, i % BASE.layers);
    assert.equal(r.experts.length, BASE.tokens);
    validateRecord(r, h, `record ${i}`); // k distinct ids in range, or it throws
  });
  assert.deepEqual([...generateRecords(BASE)], recs);
  assert.notDeepEqual([...generateRecords({ ...BASE, seed: 43 })], recs);
  assert.throws(() => [...generateRecords({ ...BASE, topK: 9 })], (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_OPTION');
});

test('popularity follows 1/(r+1)^skew', () => {
  // k = 1, no locality, no correlation: each token is one popularity draw. Sorted shares vs
  // (1/(r+1)^X) / sum; 60,000 tokens give a standard error <= 0.002, the tolerance is 0.01.
  for (const skew of [0, 1, 2]) {
    const o = { ...BASE, topK: 1, layers: 1, steps: 60, tokens: 1000, locality: 0, correlation: 0, skew };
    const count = new Array(8).fill(0);
    for (const r of generateRecords(o)) for (const t of r.experts) count[t[0]]++;
    const shares = count.map((c) => c / 60000).sort((a, b) => b - a);
    const w = Array.from({ length: 8 }, (_, r) => 1 / Math.pow(r + 1, skew));
    const total = w.reduce((a, b) => a + b, 0);
    shares.forEach((s, r) => assert.ok(Math.abs(s - w[r] / total) < 0.01, `skew ${skew} rank ${r}: ${s} vs ${w[r] / total}`));
  }
});

test('locality 1 repeats previous-step expert sets; locality 0 does not', () => {
  const key = (t: number[]) => t.join(',');
  const repeats = (o: GenTraceOptions): number => {
    let prev = new Map<number, Set<string>>();
    let n = 0;
    let total = 0;
    for (const r of generateRecords(o)) {
      const before = prev.get(r.layer);
      for (const t of before ? r.experts : []) {
        total++;
        if (before!.has(key(t))) n++;
      }
      prev.set(r.layer, new Set(r.experts.map(key)));
    }
    return n / total;
  };
  assert.equal(repeats({ ...BASE, locality: 1 }), 1);
  // with 8 experts, 5 fresh tokens hit one of the <= 5 previous ordered pairs only by chance
  assert.ok(repeats({ ...BASE, locality: 0, steps: 200 }) < 0.3);
});

test('correlation 1 pairs experts consistently: the second expert is the first one\'s partner', () => {
  const partnerOf = (o: GenTraceOptions) => {
    const seen = new Map<string, number>(); // "layer:first" -> second
    let consistent = true;
    for (const r of generateRecords(o)) {
      for (const [a, b] of r.experts) {
        const k = `${r.layer}:${a}`;
        if (seen.has(k) && seen.get(k) !== b) consistent = false;
        seen.set(k, b);
      }
    }
    // symmetric pairing: partner(partner(a)) = a
    for (const [k, b] of seen) {
      const [l, a] = k.split(':').map(Number);
      const back = seen.get(`${l}:${b}`);
      if (back !== undefined && back !== a) consistent = false;
    }
    return consistent;
  };
  assert.equal(partnerOf({ ...BASE, correlation: 1, locality: 0, steps: 50 }), true);
  assert.equal(partnerOf({ ...BASE, correlation: 0, locality: 0, steps: 50 }), false);
});

test('writeGenTrace writes what generateRecords yields (gzip)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-gen-'));
  try {
    const path = join(dir, 'g.jsonl.gz');
    await writeGenTrace(BASE, path);
    const { header, records } = await readTrace(path);
    assert.deepEqual(header, genHeader(BASE));
    const got: TraceRecord[] = [];
    for await (const r of records) got.push(r);
    assert.deepEqual(got, [...generateRecords(BASE)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
