import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { analyzeRecords, analyzeTrace, gini } from '../../src/analysis/analyze.js';
import { analysisJson, formatAnalysisText, writeAnalysisFiles } from '../../src/analysis/analyze-report.js';
import type { TraceHeader, TraceRecord } from '../../src/trace/format.js';
import { MoesaicError } from '../../src/errors.js';
import { rng } from '../helpers/random.js';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('gini of hand-worked popularity vectors', () => {
  close(gini([0.25, 0.25, 0.25, 0.25]), 0);
  // pairwise: sum |xi - xj| over ordered pairs = 8 * 0.5 = 4; / (2 * 4^2 * 0.25) = 0.5
  close(gini([0, 0.5, 0, 0.5]), 0.5);
  close(gini([1, 0, 0, 0]), 0.75); // one expert takes all: (E - 1) / E
  close(gini([1 / 3, 1 / 6, 1 / 4, 1 / 4]), 0.125);
  close(gini([0, 0, 0]), 0);
});

const header = (moe: number[], E: number, k: number): TraceHeader => ({
  moesaic_trace: 1,
  model: 'hand',
  num_layers: Math.max(...moe) + 1,
  moe_layers: moe,
  num_experts: E,
  top_k: k,
});

/**
 * Layer 0 (E = 4, k = 2), worked by hand:
 *   step 0: tokens [0,1],[0,2] -> shares [.5,.25,.25,0], A = {0,1,2}
 *   step 1: [0,1]              -> [.5,.5,0,0],        A = {0,1}
 *   step 2: [2,3],[2,3]        -> [0,0,.5,.5],        A = {2,3}
 *   step 3: [0,3]              -> [.5,0,0,.5],        A = {0,3}
 * assignments per expert 4,2,3,3 of 12 -> popularity [1/3, 1/6, 1/4, 1/4]; max/mean = 4/3; gini = 0.125
 * inactive 1,2,2,2 -> mean 1.75; locality = (2 + 0 + 1) / (3 + 2 + 2) = 3/7; active fraction = 9/16
 * r(0,1): x=[.5,.5,0,.5], y=[.25,.5,0,0] -> Σdxdy = 3/32, Σdx² = 3/16, Σdy² = 11/64 -> 3/sqrt(33)
 * r(2,3): x=[.25,0,.5,0], y=[0,0,.5,.5] -> 1/sqrt(11)
 * Layer 1: expert 0 in every token with share .5 (a constant series), steps [0,1],[0,2],[0,3]:
 * r(0, *) = 0, r(1,2) = -0.5, locality = (1 + 1) / (2 + 2) = 0.5.
 * Layer 2 never routes tokens (an empty record only).
 */
const handRecords: TraceRecord[] = [
  { step: 0, layer: 0, experts: [[0, 1], [0, 2]] },
  { step: 0, layer: 1, experts: [[0, 1]] },
  { step: 0, layer: 2, experts: [] },
  { step: 1, layer: 0, experts: [[1, 0]] },
  { step: 1, layer: 1, experts: [[2, 0]] },
  { step: 2, layer: 0, experts: [[2, 3], [3, 2]] },
  { step: 2, layer: 1, experts: [[0, 3]] },
  { step: 3, layer: 0, experts: [[0, 3]] },
];

test('analyzeRecords on a hand-worked trace', async () => {
  const a = await analyzeRecords(header([0, 1, 2], 4, 2), handRecords);
  assert.equal(a.steps, 4);
  const [l0, l1, l2] = a.layers;
  assert.equal(l0!.steps, 4);
  assert.equal(l0!.tokens, 6);
  assert.equal(l0!.assignments, 12);
  [1 / 3, 1 / 6, 1 / 4, 1 / 4].forEach((p, e) => close(l0!.popularity[e]!, p));
  close(l0!.max_over_mean, 4 / 3);
  close(l0!.gini, 0.125);
  assert.deepEqual(l0!.inactive, { mean: 1.75, min: 1, max: 2 });
  close(l0!.locality!, 3 / 7);
  close(l0!.active_fraction!, 9 / 16);
  close(l0!.correlation![0]![1]!, 3 / Math.sqrt(33));
  close(l0!.correlation![1]![0]!, 3 / Math.sqrt(33));
  close(l0!.correlation![2]![3]!, 1 / Math.sqrt(11));
  close(l0!.correlation![2]![2]!, 1);

  const c = l1!.correlation!;
  for (let e = 0; e < 4; e++) assert.equal(c[0]![e], 0, 'a constant series correlates 0 with everything, itself included');
  close(c[1]![2]!, -0.5);
  close(l1!.locality!, 0.5);
  assert.deepEqual(l1!.inactive, { mean: 2, min: 2, max: 2 });

  assert.equal(l2!.steps, 0);
  assert.deepEqual(l2!.popularity, [0, 0, 0, 0]);
  assert.equal(l2!.inactive, null);
  assert.equal(l2!.locality, null);
  // summary means skip the layer without steps
  close(a.summary.locality!, (3 / 7 + 0.5) / 2);
  close(a.summary.inactive_mean!, (1.75 + 2) / 2);
});


function randomTrace(E: number, k: number, layers: number[], steps: number, seed: number): TraceRecord[] {
  const r = rng(seed);
  const out: TraceRecord[] = [];
  for (let s = 0; s < steps; s++) {
    for (const layer of layers) {
      const T = 1 + Math.floor(r() * 4);
      const experts: number[][] = [];
      for (let t = 0; t < T; t++) {
        const ids = new Set<number>();
        // skewed: low ids more likely
        while (ids.size < k) ids.add(Math.floor(E * r() * r()));
        experts.push([...ids]);
      }
      out.push({ step: s, layer, experts });
    }
  }
  return out;
}

/** Two-pass reference: per-step share series, pairwise Gini, set-based locality, textbook Pearson. */
function reference(records: TraceRecord[], layer: number, E: number, k: number) {
  const recs = records.filter((r) => r.layer === layer && r.experts.length > 0);
  const series = recs.map((r) => {
    const s = new Array<number>(E).fill(0);
    for (const tok of r.experts) for (const e of tok) s[e]! += 1 / (r.experts.length * k);
    return s;
  });
  const counts = new Array<number>(E).fill(0);
  for (const r of recs) for (const tok of r.experts) for (const e of tok) counts[e]!++;
  const total = counts.reduce((a, b) => a + b, 0);
  const pop = counts.map((c) => c / total);
  let pairSum = 0;
  for (const x of pop) for (const y of pop) pairSum += Math.abs(x - y);
  const g = pairSum / (2 * E * E * (1 / E));
  const sets = recs.map((r) => new Set(r.experts.flat()));
  let kept = 0;
  let base = 0;
  for (let i = 0; i + 1 < sets.length; i++) {
    base += sets[i]!.size;
    for (const e of sets[i]!) if (sets[i + 1]!.has(e)) kept++;
  }
  const n = series.length;
  const pearson = (i: number, j: number) => {
    const x = series.map((s) => s[i]!);
    const y = series.map((s) => s[j]!);
    const mx = x.reduce((a, b) => a + b, 0) / n;
    const my = y.reduce((a, b) => a + b, 0) / n;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let t = 0; t < n; t++) {
      sxy += (x[t]! - mx) * (y[t]! - my);
      sxx += (x[t]! - mx) ** 2;
      syy += (y[t]! - my) ** 2;
    }
    return sxx === 0 || syy === 0 ? 0 : sxy / Math.sqrt(sxx * syy);
  };
  return { pop, gini: g, locality: kept / base, pearson };
}

test('streaming analysis agrees with a two-pass reference on a random trace', async () => {
  const E = 12;
  const k = 3;
  const layers = [1, 3];
  const recs = randomTrace(E, k, layers, 300, 7);
  const a = await analyzeRecords(header(layers, E, k), recs);
  a.layers.forEach((l, li) => {
    const ref = reference(recs, layers[li]!, E, k);
    ref.pop.forEach((p, e) => close(l.popularity[e]!, p, 1e-12));
    close(l.gini, ref.gini, 1e-12);
    close(l.locality!, ref.locality, 1e-12);
    let best = { r: -Infinity, a: -1, b: -1 };
    for (let i = 0; i < E; i++) {
      for (let j = 0; j < E; j++) {
        if (i === j) continue;
        const r = ref.pearson(i, j);
        close(l.correlation![i]![j]!, r, 1e-9);
        if (i < j && r > best.r) best = { r, a: i, b: j };
      }
    }
    assert.deepEqual([l.top_pairs[0]!.a, l.top_pairs[0]!.b], [best.a, best.b]);
    for (let p = 1; p < l.top_pairs.length; p++) assert.ok(l.top_pairs[p - 1]!.r >= l.top_pairs[p]!.r);
  });
});

test('sparse pair sums (many experts) give the dense top pairs; the matrix is left out', async () => {
  const E = 12;
  const k = 3;
  const layers = [1, 3];
  const recs = randomTrace(E, k, layers, 300, 9);
  const dense = await analyzeRecords(header(layers, E, k), recs);
  const sparse = await analyzeRecords(header(layers, E, k), recs, { maxDenseEntries: E * E }); // 2 layers: over it
  assert.ok(dense.layers.every((l) => l.correlation !== null));
  sparse.layers.forEach((l, i) => {
    assert.equal(l.correlation, null);
    const d = dense.layers[i]!;
    assert.deepEqual(l.top_pairs.map((p) => [p.a, p.b]), d.top_pairs.map((p) => [p.a, p.b]));
    l.top_pairs.forEach((p, j) => close(p.r, d.top_pairs[j]!.r, 1e-12));
    assert.deepEqual({ ...l, correlation: null, top_pairs: [] }, { ...d, correlation: null, top_pairs: [] });
  });
  assert.match(formatAnalysisText(sparse, 't'), /full correlation matrix is left out at 12 experts; the top pairs are exact/);
  assert.equal(JSON.parse(analysisJson(sparse)).layers[0].correlation, null);
});

test('a trace with 50,000 experts is analysed (sparse pairs), and a pair budget fails clearly', async () => {
  // experts 40000 and 49999 fire together with shares that rise and fall together: r = 1
  const E = 50_000;
  const recs: TraceRecord[] = [1, 2, 1, 3].map((n, step) => ({
    step,
    layer: 0,
    experts: [...Array.from({ length: n }, () => [40000, 49999]), ...Array.from({ length: 4 - n }, () => [7, 8])],
  }));
  const a = await analyzeRecords(header([0], E, 2), recs);
  const l = a.layers[0]!;
  assert.equal(l.correlation, null);
  assert.equal(l.popularity.length, E);
  // 7 and 8 fire together too (r = 1); each pair against the other is r = -1, so not a top pair
  assert.deepEqual(l.top_pairs.map((p) => `${p.a}-${p.b}`).sort(), ['40000-49999', '7-8']);
  for (const p of l.top_pairs) close(p.r, 1, 1e-9);
  await assert.rejects(
    analyzeRecords(header([0], E, 2), recs, { maxSparsePairs: 1 }),
    (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_TRACE' && /more than 1 pairs of experts are active together \(50000 experts\)/.test(e.message),
  );
});

test('analyzeTrace reads a (gzip) file and writes the report files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-analyze-'));
  try {
    const h = header([0, 1, 2], 4, 2);
    const text = [h, ...handRecords].map((x) => JSON.stringify(x)).join('\n') + '\n';
    const gz = join(dir, 'hand.jsonl.gz');
    writeFileSync(gz, gzipSync(text));
    const fromFile = await analyzeTrace(gz);
    const inMemory = await analyzeRecords(h, handRecords);
    assert.deepEqual(fromFile, inMemory);

    const out = join(dir, 'out');
    const written = await writeAnalysisFiles(fromFile, out);
    assert.deepEqual(written.map((p) => p.slice(out.length + 1)), ['analysis.json', 'popularity.svg', 'inactive.svg']);
    const json = JSON.parse(readFileSync(join(out, 'analysis.json'), 'utf8'));
    assert.equal(json.layers.length, 3);
    assert.equal(json.layers[0].correlation[0][1], Math.round((3 / Math.sqrt(33)) * 1e4) / 1e4);
    assert.deepEqual(JSON.parse(analysisJson(fromFile)), json);
    const heat = readFileSync(join(out, 'popularity.svg'), 'utf8');
    assert.equal([...heat.matchAll(/<rect class="cell"/g)].length, 3 * 4);
    const bars = readFileSync(join(out, 'inactive.svg'), 'utf8');
    assert.equal([...bars.matchAll(/<rect class="bar"/g)].length, 3);

    const summary = formatAnalysisText(fromFile, gz);
    assert.match(summary, /4 experts, top-2, 3 MoE layers, 4 steps/);
    assert.match(summary, /layer 0: 0-1 r=0\.522/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
