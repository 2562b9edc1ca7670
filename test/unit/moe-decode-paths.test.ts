// The decode step's fast paths in the MoE layer, each against the general path it replaces, on fresh
// random inputs (the seed is printed in every failure so it reproduces): the paired token-order
// combine, the in-place top-k, the dynamic plan straight from the sort, and the scratch buffers' views.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combineTokenOrder } from '../../src/moe/combine.js';
import { buildPlan, groupedBytes } from '../../src/moe/dispatch.js';
import type { DispatchPlan } from '../../src/moe/dispatch.js';
import { dynamicDispatch, exactGroups } from '../../src/moe/dispatch-dynamic.js';
import type { Routing } from '../../src/moe/routing.js';
import { topK, topKInto } from '../../src/moe/routing.js';
import { Scratch } from '../../src/tensor/scratch.js';
import { rng } from '../helpers/random.js';

const SEED = (Date.now() ^ (process.pid << 8)) >>> 0;

/** A routing of T tokens with k slots each over E experts, some slots empty (-1) when `holes`. */
function randomRouting(r: () => number, T: number, k: number, E: number, holes: boolean): Routing {
  const experts = new Int32Array(T * k);
  const weights = new Float32Array(T * k);
  for (let a = 0; a < T * k; a++) {
    experts[a] = holes && r() < 0.25 ? -1 : Math.floor(r() * E);
    weights[a] = experts[a]! < 0 ? 0 : r();
  }
  return { tokens: T, k, experts, weights };
}

/** The combine as the plain loop it replaces: each placed assignment's row added on its own, in order. */
function combineOneByOne(out: Float32Array, ys: Float32Array, routing: Routing, plan: DispatchPlan, H: number): void {
  for (let a = 0; a < routing.tokens * routing.k; a++) {
    const s = plan.slotOf[a]!;
    if (s < 0) continue;
    const o = Math.floor(a / routing.k) * H;
    for (let i = 0; i < H; i++) out[o + i]! += routing.weights[a]! * ys[s * H + i]!;
  }
}

test('the paired token-order combine equals adding each assignment on its own, bit for bit', () => {
  const r = rng(SEED);
  for (let trial = 0; trial < 40; trial++) {
    const T = 1 + Math.floor(r() * 6);
    const k = [1, 2, 3, 4, 8][trial % 5]!;
    const E = 2 + Math.floor(r() * 9);
    const H = 1 + Math.floor(r() * 37);
    const routing = randomRouting(r, T, k, E, trial % 2 === 1);
    const plan = dynamicDispatch.plan(routing, { experts: E, hidden: H, ffn: 4 });
    const rows = plan.offsets[E]!;
    const ys = Float32Array.from({ length: rows * H }, () => (r() - 0.5) * 2 ** (r() * 40 - 20));
    const start = Float32Array.from({ length: T * H }, () => (trial % 3 === 0 ? 0 : r() - 0.5)); // Finalize accumulates
    const want = start.slice();
    combineOneByOne(want, ys, routing, plan, H);
    const got = start.slice();
    combineTokenOrder(got, ys, routing, plan, T, H);
    assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), `T=${T} k=${k} E=${E} H=${H} (seed ${SEED}, trial ${trial})`);
  }
});

test('topKInto fills a row in place as topK (and its sort path) choose, and touches nothing else', () => {
  const r = rng(SEED + 1);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(r() * 20);
    const k = 1 + Math.floor(r() * 12);
    // few distinct values, so ties are common; some masked
    const values = Array.from({ length: n + 3 }, () => (r() < 0.15 ? -Infinity : Math.floor(r() * 5)));
    const want = values.slice(3).map((v, i) => [v, i] as const).filter(([v]) => v !== -Infinity).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);
    const idx = new Int32Array(k + 4).fill(-7);
    const found = topKInto(values, 3, n, k, idx, 2, new Float64Array(k));
    const what = `n=${n} k=${k} (seed ${SEED}, trial ${trial})`;
    assert.deepEqual(Array.from(idx.subarray(2, 2 + found)), want, what);
    assert.ok([...idx.subarray(0, 2), ...idx.subarray(2 + found)].every((v) => v === -7), `${what}: wrote outside its row`);
    assert.deepEqual(topK(values, 3, n, k), want, what);
  }
});

test('the dynamic plan made straight from the sort equals the plan built from per-expert groups', () => {
  const r = rng(SEED + 2);
  for (let trial = 0; trial < 40; trial++) {
    const E = 1 + Math.floor(r() * 10);
    const k = 1 + Math.floor(r() * Math.min(E, 4));
    const routing = randomRouting(r, 1 + Math.floor(r() * 9), k, E, trial % 2 === 0);
    const shape = { experts: E, hidden: 16, ffn: 8 };
    const { counts, groups } = exactGroups(routing, E);
    const want = buildPlan(routing, shape, counts, groups, 0, (rows, largest) => groupedBytes(rows, largest, shape));
    assert.deepEqual(dynamicDispatch.plan(routing, shape), want, `E=${E} k=${k} (seed ${SEED}, trial ${trial})`);
  }
});

test('scratch buffers hand out the same view while the length repeats, a new one of the right length otherwise', () => {
  const s = new Scratch();
  const a = s.get('x', 8);
  a.fill(3);
  assert.equal(s.get('x', 8), a, 'a decode step asking again gets the same view, no new object');
  const shorter = s.get('x', 5);
  assert.equal(shorter.length, 5);
  assert.equal(shorter.buffer, a.buffer, 'a shorter request is a view of the same memory');
  assert.equal(shorter[4], 3);
  assert.equal(s.get('x', 8).length, 8);
  const longer = s.get('x', 20);
  assert.equal(longer.length, 20);
  assert.notEqual(longer.buffer, a.buffer, 'a longer request grows the buffer');
  assert.equal(s.get('y', 8).buffer === longer.buffer, false, 'names are kept apart');
  assert.equal(s.bytes, 4 * (20 + 8));
});
