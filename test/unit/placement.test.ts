import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activityFromSteps, type LayerActivity } from '../../src/trace/activity.js';
import type { TraceHeader } from '../../src/trace/format.js';
import {
  antiCorrPlacement,
  contiguousPlacement,
  CORRELATION_QUANTUM,
  correlationQuanta,
  exactMeans,
  greedyPlacement,
  placeExperts,
  roundRobinPlacement,
} from '../../src/parallel/placement.js';
import { evaluateLoad, simulatePlacement } from '../../src/analysis/placement-sim.js';
import { MoesaicError } from '../../src/errors.js';

const header = (E: number, k: number, layers: number[]): TraceHeader => ({
  moesaic_trace: 1,
  model: 't',
  num_layers: Math.max(...layers) + 1,
  moe_layers: layers,
  num_experts: E,
  top_k: k,
});

/** A layer from per-step per-expert counts (k assignments per token, T = sum / k tokens). */
function fromCounts(layer: number, k: number, rows: number[][]): LayerActivity {
  const sets = rows.map((r) => r.flatMap((c, e) => (c > 0 ? [e] : [])));
  const counts = rows.map((r) => r.filter((c) => c > 0));
  const tokens = rows.map((r) => r.reduce((a, b) => a + b, 0) / k);
  return activityFromSteps(layer, sets, tokens, counts);
}

test('contiguous and roundrobin', () => {
  assert.deepEqual(Array.from(contiguousPlacement(6, 3)), [0, 0, 1, 1, 2, 2]);
  assert.deepEqual(Array.from(roundRobinPlacement(6, 3)), [0, 1, 2, 0, 1, 2]);
  assert.throws(() => contiguousPlacement(6, 4), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_OPTION');
});

test('Pearson correlation of share series, 0 for a constant series; exact means', () => {
  // 20 assignments per step (k = 1), so shares are counts / 20. Series: e0 = x = 1, 2, 3; e1 = 2x;
  // e2 = 4 - x (reversed); e3 constant 5; e4 fills the step: 20 - 3x - 9 - ... = 9, 7, 5 (falls with x)
  const act = fromCounts(0, 1, [[1, 2, 3, 5, 9], [2, 4, 2, 5, 7], [3, 6, 1, 5, 5]]);
  const h = { numExperts: 5, topK: 1, tokens: act.tokens, offsets: act.offsets, experts: act.experts, counts: act.counts };
  const q = correlationQuanta(h);
  const at = (a: number, b: number) => q[a * 5 + b] * CORRELATION_QUANTUM;
  assert.ok(Math.abs(at(0, 1) - 1) < 1e-8);
  assert.ok(Math.abs(at(0, 2) + 1) < 1e-8);
  assert.ok(Math.abs(at(0, 4) + 1) < 1e-8);
  assert.equal(at(0, 3), 0);
  assert.equal(at(3, 3), 0);
  assert.equal(at(1, 0), at(0, 1));
  assert.equal(at(2, 2), 1);
  // means: e0 (1 + 2 + 3) / 20 / 3 = 0.1 -> weight / denominator exactly
  const m = exactMeans(h);
  assert.equal(m.denominator, 60n); // S k L = 3 * 1 * 20
  assert.deepEqual(m.weight, [6n, 12n, 6n, 15n, 21n]);
  // steps of different sizes: L = lcm(2, 3) = 6, shares 1/2 and 1/3 -> weights 3 and 2 over 2 * 1 * 6
  const mixed = fromCounts(0, 1, [[1, 1, 0], [1, 0, 2]]);
  const mm = exactMeans({ numExperts: 3, topK: 1, tokens: mixed.tokens, offsets: mixed.offsets, experts: mixed.experts, counts: mixed.counts });
  assert.deepEqual([mm.weight, mm.denominator], [[3n + 2n, 3n, 4n], 12n]);
});

test('anticorr refuses more experts than it can pair, with a clear error', () => {
  const E = 4097;
  assert.throws(
    () => correlationQuanta({ numExperts: E, topK: 1, tokens: [1], offsets: [0, 1], experts: [0], counts: [1] }),
    (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_OPTION' && /at most 4096 experts per layer, got 4097/.test(e.message),
  );
});

test('greedy and anti-correlation on a hand example', () => {
  // means 0.4, 0.3, 0.2, 0.1; experts 1 and 2 perfectly correlated, other pairs 0.
  // greedy: 0 -> d0 (0.4), 1 -> d1 (0.3), 2 -> d1 (0.3 < 0.4; d1 now full), 3 -> d0
  // anticorr: 0 -> d0; 1: d0 0.4 + 0 vs d1 0 -> d1; 2: d0 0.4 vs d1 0.3 + 0.5*1 = 0.8 -> d0; 3 -> d1
  const mean = { weight: [4n, 3n, 2n, 1n], denominator: 10n };
  const one = 1 / CORRELATION_QUANTUM;
  const corr = new Int32Array(16);
  for (let i = 0; i < 4; i++) corr[i * 4 + i] = one;
  corr[1 * 4 + 2] = corr[2 * 4 + 1] = one;
  assert.deepEqual(Array.from(greedyPlacement(mean, 2)), [0, 1, 1, 0]);
  assert.deepEqual(Array.from(antiCorrPlacement(mean, corr, 2)), [0, 1, 0, 1]);
  // equal means .25: ascending id order; 0 -> d0, 1 -> d1 (lighter), 2 -> tie -> d0, 3 -> d1
  assert.deepEqual(Array.from(greedyPlacement({ weight: [1n, 1n, 1n, 1n], denominator: 4n }, 2)), [0, 1, 0, 1]);
  // all means 0 (empty history): every load stays 0, so ties fill the lowest device first
  assert.deepEqual(Array.from(greedyPlacement({ weight: [0n, 0n, 0n, 0n], denominator: 1n }, 2)), [0, 0, 1, 1]);
});

// Hand-made trace, E = 4, k = 1, T = 8 tokens per step, 4 steps: fit on steps 0-1, measure on 2-3.
//   step 0 counts [3,2,2,1] -> shares [.375,.25,.25,.125]
//   step 1 counts [4,1,1,2] -> shares [.5,.125,.125,.25]
// means .4375, .1875, .1875, .1875 (order 0,1,2,3); 2-point series: 0 and 3 rise, 1 and 2 fall, so
// corr(0,1) = corr(0,2) = -1, corr(1,2) = +1, corr(0,3) = +1, corr(1,3) = corr(2,3) = -1.
// greedy: 0 -> d0, 1 -> d1, 2 -> d1 (.1875 < .4375), 3 -> d0          => d0 {0,3}, d1 {1,2}
// anticorr: 0 -> d0; 1: d0 = .4375 - .5 = -.0625 < d1 = 0 -> d0; 2, 3 -> d1 => d0 {0,1}, d1 {2,3}
//   step 2 counts [4,1,3,0]; step 3 counts [2,2,2,2] (every split gives .5 at step 3)
// step 2 device shares: greedy {0,3} 4/8 {1,2} 4/8 -> .5; contiguous/anticorr {0,1} 5/8 -> .625;
// roundrobin {0,2} 7/8 -> .875.
const HAND = fromCounts(0, 1, [[3, 2, 2, 1], [4, 1, 1, 2], [4, 1, 3, 0], [2, 2, 2, 2]]);

test('greedy and anticorr decide equal loads exactly: ties go to the lowest device index', () => {
  // one fitting step of T = 14 tokens (k = 1), counts [5, 3, 2, 2, 1, 1]: e0 -> d0 (5/14), e1 -> d1,
  // e2 -> d1 (3/14 < 5/14), then d0 = 5/14 = 3/14 + 2/14 = d1 exactly, though in floating point
  // 3/14 + 2/14 < 5/14. The tie sends e3 to d0; e4 -> d1 (5 < 7, d1 full), e5 -> d0.
  const act = fromCounts(0, 1, [[5, 3, 2, 2, 1, 1], [1, 1, 1, 1, 5, 5]]);
  const trace = { header: header(6, 1, [0]), layers: [act] };
  for (const policy of ['greedy', 'anticorr'] as const) {
    assert.deepEqual(simulatePlacement(trace, 2, policy).placements['0'], [0, 1, 1, 0, 1, 0], policy);
  }
});

test('placement metrics on a hand-made trace, all four policies', () => {
  const trace = { header: header(4, 1, [0]), layers: [HAND] };
  const expect: Record<string, [number, number, number[]]> = {
    contiguous: [0.625, (0.625 + 0.5) / 2, [0, 0, 1, 1]],
    roundrobin: [0.875, (0.875 + 0.5) / 2, [0, 1, 0, 1]],
    greedy: [0.5, 0.5, [0, 1, 1, 0]],
    anticorr: [0.625, (0.625 + 0.5) / 2, [0, 0, 1, 1]],
  };
  for (const [policy, [maxLoad, avgMax, place]] of Object.entries(expect)) {
    const r = simulatePlacement(trace, 2, policy as 'greedy');
    assert.deepEqual(r.placements['0'], place, policy);
    assert.ok(Math.abs(r.max_load - maxLoad) < 1e-12, `${policy} max_load ${r.max_load}`);
    assert.ok(Math.abs(r.avg_max_load - avgMax) < 1e-12, `${policy} avg_max_load ${r.avg_max_load}`);
    assert.deepEqual(Object.keys(r.per_layer), ['0']);
  }
});

test('shares divide by T*k, and the overall figures average the layers', () => {
  // E = 2, k = 2, T = 2 tokens [[0,1],[0,1]] per step: counts [2,2]. With 2 devices each device holds
  // one expert: 2 of T*k = 4 assignments -> .5 (dividing by T alone would give 1). Layer 5 has 3 steps
  // (fit on 1, measure on 2). With 1 device the device holds both experts -> 1.
  const l2 = fromCounts(2, 2, [[2, 2], [2, 2]]);
  const trace = { header: header(2, 2, [2, 5]), layers: [l2, fromCounts(5, 2, [[2, 2], [2, 2], [2, 2]])] };
  const r = simulatePlacement(trace, 2, 'contiguous');
  assert.equal(r.per_layer['2'].max_load, 0.5);
  assert.equal(r.per_layer['5'].avg_max_load, 0.5);
  const one = simulatePlacement(trace, 1, 'roundrobin');
  assert.equal(one.max_load, 1);
  // layers with different loads: E = 4, k = 1, D = 2, contiguous {0,1} {2,3}
  const a = fromCounts(0, 1, [[1, 1, 1, 1], [4, 0, 0, 0]]); // test step: device 0 holds all -> 1
  const b = fromCounts(1, 1, [[1, 1, 1, 1], [1, 1, 1, 1]]); // test step: .5
  const two = simulatePlacement({ header: header(4, 1, [0, 1]), layers: [a, b] }, 2, 'contiguous');
  assert.equal(two.max_load, 0.75);
  assert.equal(two.avg_max_load, 0.75);
  assert.throws(
    () => simulatePlacement({ header: header(4, 1, [0]), layers: [fromCounts(0, 1, [[1, 1, 1, 1]])] }, 2, 'greedy'),
    (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_TRACE' && /layer 0/.test(e.message),
  );
});

test('evaluateLoad agrees with a direct computation from tokens on random traces', () => {
  let s = 5;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  for (let trial = 0; trial < 20; trial++) {
    const E = 8;
    const k = 2;
    const D = 4;
    // tokens as explicit expert pairs, reduced independently of the simulator's CSR path
    const steps = Array.from({ length: 6 }, () =>
      Array.from({ length: 1 + Math.floor(rand() * 9) }, () => {
        const a = Math.floor(rand() * E);
        return [a, (a + 1 + Math.floor(rand() * (E - 1))) % E];
      }),
    );
    const counts = steps.map((toks) => {
      const c = new Array(E).fill(0);
      for (const t of toks) for (const e of t) c[e]++;
      return c;
    });
    const act = fromCounts(0, k, counts);
    const place = placeExperts(trial % 2 ? 'roundrobin' : 'contiguous', E, D);
    let maxLoad = 0;
    let sum = 0;
    for (let i = 3; i < 6; i++) {
      const per = new Array(D).fill(0);
      for (const t of steps[i]) for (const e of t) per[place[e]] += 1 / (steps[i].length * k);
      const top = Math.max(...per);
      maxLoad = Math.max(maxLoad, top);
      sum += top;
    }
    const got = evaluateLoad(act, place, D, k, 3, 6);
    assert.ok(Math.abs(got.max_load - maxLoad) < 1e-12);
    assert.ok(Math.abs(got.avg_max_load - sum / 3) < 1e-12);
  }
});
