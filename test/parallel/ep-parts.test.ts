/** The parts of expert parallelism that need no MPI: launcher, expert map, MoEShard slices. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { freshBuffers } from '../../src/moe/buffers.js';
import { swiglu, type SwiGluWeights } from '../../src/moe/swiglu.js';
import { sliceExpert, sliceRange } from '../../src/parallel/ep-shard.js';
import { RankExperts } from '../../src/parallel/rank-experts.js';
import { runExperts } from '../../src/moe/experts-stage.js';
import type { Backend } from '../../src/tensor/backend.js';
import { buildExpertMap, expertsOn, holderOf } from '../../src/parallel/expert-map.js';
import { mpirunPlan, withoutRanks } from '../../src/parallel/launch.js';
import { activityFromSteps } from '../../src/trace/activity.js';
import { getBackend } from '../../src/tensor/backends.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32 } from '../helpers/random.js';
import type { TraceActivity } from '../../src/trace/activity.js';

describe('--ranks launcher', () => {
  test('drops --ranks and --hostfile in both spellings, keeps everything else', () => {
    assert.deepEqual(withoutRanks(['logits', '--ranks', '4', '--model', 'm', '--ranks=2', '--hostfile', 'h', '--hostfile=x', '--ids', '1']), ['logits', '--model', 'm', '--ids', '1']);
  });
  test('mpirun gets oversubscription, yielding, no binding, a hostfile and the root variables', () => {
    const p = mpirunPlan(3, ['node', 'bin.js'], ['generate', '--ranks', '3', '--json'], { hostfile: 'hosts', root: true, env: { A: '1' } });
    assert.equal(p.command, 'mpirun');
    const a = p.args.join(' ');
    assert.match(a, /^-np 3 /);
    for (const s of ['--oversubscribe', '--mca mpi_yield_when_idle 1', '--bind-to none', '--hostfile hosts']) assert.ok(a.includes(s), s);
    assert.ok(a.endsWith('node bin.js generate --json'), a);
    assert.equal(p.env['OMPI_ALLOW_RUN_AS_ROOT'], '1');
    assert.equal(p.env['OMPI_ALLOW_RUN_AS_ROOT_CONFIRM'], '1');
    assert.equal(p.env['A'], '1');
    assert.equal(mpirunPlan(2, ['n'], [], { root: false, env: {} }).env['OMPI_ALLOW_RUN_AS_ROOT'], undefined);
  });
});

/** A trace activity in which expert 0 takes most assignments. */
function skewedActivity(E: number, steps: number): TraceActivity {
  const active = Array.from({ length: steps }, (_, b) => [0, 1 + (b % (E - 1))]);
  const counts = active.map(() => [30, 2]);
  const layer = activityFromSteps(0, active, active.map(() => 16), counts);
  return { header: { moesaic_trace: 1, model: 'm', num_layers: 1, moe_layers: [0], num_experts: E, top_k: 2 }, layers: [layer] } as TraceActivity;
}

describe('expert map', () => {
  test('contiguous and round-robin: one holder per expert, E/N experts per rank', () => {
    const c = buildExpertMap([true, false], 8, 4, { placement: 'contiguous' });
    assert.equal(c.layers[1], null);
    assert.deepEqual(expertsOn(c.layers[0]!, 1), [2, 3]);
    const r = buildExpertMap([true], 8, 4, { placement: 'roundrobin' });
    assert.deepEqual(expertsOn(r.layers[0]!, 1), [1, 5]);
  });

  test('EPLB replicas give the hot expert several ranks, and its rows take turns over them', () => {
    const m = buildExpertMap([true], 8, 4, { placement: 'eplb', trace: skewedActivity(8, 10), replicas: 12 });
    const l = m.layers[0]!;
    const copies = l.holders[0]!;
    assert.ok(copies.length >= 3, `hot expert has ${copies.length} copies`);
    assert.equal(l.holders.reduce((s, h) => s + h.length, 0), 12);
    const seen = new Set(Array.from({ length: copies.length }, (_, i) => holderOf(l, 0, i)));
    assert.equal(seen.size, new Set(copies).size);
  });

  test('fitted placements without a trace, replicas without EPLB and non-dividing ranks are refused', () => {
    assert.throws(() => buildExpertMap([true], 8, 2, { placement: 'greedy' }), /--placement-trace/);
    assert.throws(() => buildExpertMap([true], 8, 2, { placement: 'contiguous', replicas: 10 }), /--replicas/);
    assert.throws(() => buildExpertMap([true], 8, 3, { placement: 'contiguous' }), /--ranks must divide/);
  });
});

describe('MoEShard slices', () => {
  test('slices cover the FFN width once, remainders to the first ranks', () => {
    const parts = [0, 1, 2, 3].map((r) => sliceRange(10, r, 4));
    assert.deepEqual(parts.map((p) => p.size), [3, 3, 2, 2]);
    assert.deepEqual(parts.map((p) => p.start), [0, 3, 6, 8]);
  });

  test('the sum of the slices equals the whole expert on random inputs (odd sizes)', async () => {
    const ref = await getBackend('ref');
    const [F, H, rows] = [13, 7, 5];
    const w: SwiGluWeights = {
      gate: f32Weight('g', [F, H], randomF32(F * H, 1)),
      up: f32Weight('u', [F, H], randomF32(F * H, 2)),
      down: f32Weight('d', [H, F], randomF32(H * F, 3)),
    };
    const x = randomF32(rows * H, 4);
    const whole = new Float32Array(rows * H);
    swiglu(ref, freshBuffers, 't', whole, x, rows, w);
    for (const N of [2, 3, 4]) {
      const sum = new Float32Array(rows * H);
      for (let r = 0; r < N; r++) {
        const part = new Float32Array(rows * H);
        swiglu(ref, freshBuffers, 't', part, x, rows, sliceExpert(w, r, N));
        for (let i = 0; i < sum.length; i++) sum[i]! += part[i]!;
      }
      for (let i = 0; i < sum.length; i++) assert.ok(Math.abs(sum[i]! - whole[i]!) <= 1e-5 * (1 + Math.abs(whole[i]!)), `N=${N} element ${i}: ${sum[i]} vs ${whole[i]}`);
    }
  });

  test("a rank's slices of every expert run as one grouped kernel call per layer, equal to slice-by-slice products", async () => {
    const ref = await getBackend('ref');
    const [E, F, H, N] = [4, 12, 6, 2];
    const experts = Array.from({ length: E }, (_, e): SwiGluWeights => ({
      gate: f32Weight(`g${e}`, [F, H], randomF32(F * H, 10 + e)),
      up: f32Weight(`u${e}`, [F, H], randomF32(F * H, 20 + e)),
      down: f32Weight(`d${e}`, [H, F], randomF32(H * F, 30 + e)),
    }));
    const slices = experts.map((w) => sliceExpert(w, 1, N));
    const provider = new RankExperts([slices], 1);
    const offsets = Int32Array.of(0, 2, 2, 5, 6); // expert 1 gets no rows
    const rows = 6;
    const xs = randomF32(rows * H, 5);
    const ys = new Float32Array(rows * H);
    const calls: string[] = [];
    const counting: Backend = {
      ...ref,
      swiGlu: (...a) => (calls.push('swiGlu'), ref.swiGlu(...a)),
      matmul: (...a) => (calls.push('matmul'), ref.matmul(...a)),
      swiGluExperts: (out, x, act, ws, starts) => (calls.push(`swiGluExperts x${ws.length}`), ref.swiGluExperts(out, x, act, ws, starts)),
    };
    runExperts(provider, 0, { xs, ys, offsets, rows, hidden: H }, counting, freshBuffers);
    assert.deepEqual(calls, ['swiGluExperts x3']);
    for (const [e, a, b] of [[0, 0, 2], [2, 2, 5], [3, 5, 6]] as const) {
      const want = new Float32Array((b - a) * H);
      swiglu(ref, freshBuffers, 't', want, xs.subarray(a * H, b * H), b - a, slices[e]!);
      assert.deepEqual(ys.subarray(a * H, b * H), want, `expert ${e}`);
    }
  });
});

