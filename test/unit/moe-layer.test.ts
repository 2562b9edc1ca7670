import { test } from 'node:test';
import assert from 'node:assert/strict';
import { moeForward } from '../../src/moe/moe-layer.js';
import { dynamicDispatch } from '../../src/moe/dispatch-dynamic.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { Scratch } from '../../src/tensor/scratch.js';
import { f32Weight } from '../../src/tensor/weight.js';
import type { Weight } from '../../src/tensor/weight.js';
import { randomF32 as rand } from '../helpers/random.js';
import type { DispatchPolicy } from '../../src/moe/dispatch.js';
import { gatherPrepare, rowBufferNames, scatterFinalize } from '../../src/moe/dispatch-exec.js';
import type { ExpertProvider } from '../../src/moe/expert-provider.js';


/** Dense masked-loop MoE: every expert on every token, kept only where the token chose it. */
function maskedLoopMoe(x: Float32Array, T: number, H: number, router: Float32Array, experts: { g: Float32Array; u: Float32Array; d: Float32Array }[], F: number, k: number, renorm: boolean): Float64Array {
  const E = experts.length;
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const logits = Array.from({ length: E }, (_, e) => {
      let s = 0;
      for (let i = 0; i < H; i++) s += x[t * H + i]! * router[e * H + i]!;
      return s;
    });
    const m = Math.max(...logits);
    const z = logits.reduce((acc, l) => acc + Math.exp(l - m), 0);
    const p = logits.map((l) => Math.exp(l - m) / z);
    const chosen = p.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k);
    const norm = renorm ? chosen.reduce((acc, [v]) => acc + v, 0) : 1;
    for (let e = 0; e < E; e++) {
      const hit = chosen.find(([, ce]) => ce === e);
      if (!hit) continue;
      const act = new Float64Array(F);
      for (let f = 0; f < F; f++) {
        let g = 0;
        let u = 0;
        for (let i = 0; i < H; i++) {
          g += x[t * H + i]! * experts[e]!.g[f * H + i]!;
          u += x[t * H + i]! * experts[e]!.u[f * H + i]!;
        }
        act[f] = (g / (1 + Math.exp(-g))) * u;
      }
      for (let i = 0; i < H; i++) {
        let y = 0;
        for (let f = 0; f < F; f++) y += act[f]! * experts[e]!.d[i * F + f]!;
        out[t * H + i]! += (hit[0] / norm) * y;
      }
    }
  }
  return out;
}

for (const renorm of [true, false]) {
  test(`MoE layer (dynamic dispatch, renormalise=${renorm}) equals the dense masked loop`, () => {
    const T = 7;
    const H = 12;
    const F = 10;
    const E = 6;
    const k = 2;
    const x = rand(T * H, 1);
    const router = rand(E * H, 2).map((v) => v * 4);
    const experts = Array.from({ length: E }, (_, e) => ({ g: rand(F * H, 10 + e), u: rand(F * H, 20 + e), d: rand(H * F, 30 + e) }));
    const w = (name: string, shape: number[], data: Float32Array): Weight => f32Weight(name, shape, data);
    const weights = {
      router: w('router', [E, H], router),
      experts: experts.map((ex, e) => ({ gate: w(`g${e}`, [F, H], ex.g), up: w(`u${e}`, [F, H], ex.u), down: w(`d${e}`, [H, F], ex.d) })),
    };
    const counts: number[] = [];
    const out = new Float32Array(T * H);
    const ctx = {
      backend: refBackend,
      scratch: new Scratch(),
      router: softmaxTopKRouter(renorm),
      policy: dynamicDispatch,
      observer: (_l: number, _r: unknown, plan: { counts: Int32Array; dropped: number; padded: number }) => {
        counts.push(...plan.counts);
        assert.equal(plan.dropped, 0);
        assert.equal(plan.padded, 0);
      },
    };
    moeForward(ctx, 0, weights, k, out, x, T);
    const want = maskedLoopMoe(x, T, H, router, experts, F, k, renorm);
    for (let i = 0; i < T * H; i++) assert.ok(Math.abs(out[i]! - want[i]!) < 1e-5, `element ${i}: ${out[i]} vs ${want[i]}`);
    assert.equal(counts.reduce((a, b) => a + b, 0), T * k, 'exact counts cover every assignment');
  });
}

test('dynamic dispatch groups assignments by expert, stably, with exact counts', () => {
  const routing = { tokens: 4, k: 2, experts: Int32Array.from([2, 0, 1, 2, 2, 1, 0, 3]), weights: new Float32Array(8) };
  const plan = dynamicDispatch.plan(routing, { experts: 5, hidden: 1, ffn: 1 });
  assert.deepEqual(Array.from(plan.counts), [2, 2, 3, 1, 0]);
  assert.deepEqual(Array.from(plan.offsets), [0, 2, 4, 7, 8, 8]);
  // expert 0: assignments 1, 6; expert 1: 2, 5; expert 2: 0, 3, 4; expert 3: 7
  assert.deepEqual(Array.from(plan.slots), [1, 6, 2, 5, 0, 3, 4, 7]);
});

function smallLayer() {
  const T = 9;
  const H = 8;
  const F = 6;
  const E = 5;
  const w = (name: string, shape: number[], data: Float32Array): Weight => f32Weight(name, shape, data);
  const weights = {
    router: w('router', [E, H], rand(E * H, 3).map((v) => v * 3)),
    experts: Array.from({ length: E }, (_, e) => ({ gate: w(`g${e}`, [F, H], rand(F * H, 40 + e)), up: w(`u${e}`, [F, H], rand(F * H, 50 + e)), down: w(`d${e}`, [H, F], rand(H * F, 60 + e)) })),
  };
  return { T, H, E, x: rand(T * H, 4), weights };
}

test('the Experts stage takes weights from the provider, in the order it picks, pinning each from acquire to release', () => {
  const { T, H, E, x, weights } = smallLayer();
  const base = { backend: refBackend, router: softmaxTopKRouter(true), policy: dynamicDispatch };
  const want = new Float32Array(T * H);
  let plannedActive: number[] = [];
  moeForward({ ...base, scratch: new Scratch(), observer: (_l, _r, plan) => (plannedActive = [...plan.counts.keys()].filter((e) => plan.counts[e]! > 0)) }, 3, weights, 2, want, x, T);
  const events: string[] = [];
  const pinned = new Set<number>();
  const provider: ExpertProvider = {
    beginLayer: (layer, active) => events.push(`begin ${layer} ${active.join(',')}`),
    next: (_layer, pending) => pending[pending.length - 1]!, // reverse order
    acquire: (layer, e) => {
      assert.equal(pinned.size, 0, 'one expert pinned at a time');
      pinned.add(e);
      events.push(`acquire ${layer} ${e}`);
      return weights.experts[e]!;
    },
    release: (_layer, e) => {
      assert.ok(pinned.delete(e));
    },
    endLayer: (layer, hidden, tokens) => events.push(`end ${layer} ${hidden === x} ${tokens}`),
  };
  const got = new Float32Array(T * H);
  moeForward({ ...base, scratch: new Scratch(), experts: provider }, 3, weights, 2, got, x, T);
  assert.deepEqual(got, want, 'the order experts run in does not change the output');
  const active = [...plannedActive];
  assert.ok(active.length >= 2 && active.length <= E);
  assert.deepEqual(events, [`begin 3 ${active.join(',')}`, ...[...active].reverse().map((e) => `acquire 3 ${e}`), `end 3 true ${T}`]);
  assert.equal(pinned.size, 0);
});

test('a new policy is Plan + Prepare + Finalize in one object: slot-by-slot chunks equal dynamic gating', () => {
  const { T, H, x, weights } = smallLayer();
  const oneSlotChunks: DispatchPolicy = {
    name: 'one-slot',
    dropless: true,
    plan: dynamicDispatch.plan,
    chunks: (plan) => Array.from({ length: plan.offsets[plan.numExperts]! }, (_, s) => [s, s + 1] as const),
    prepare: (job, from, to) => gatherPrepare(job, from, to, rowBufferNames('moe.test')),
    finalize: scatterFinalize,
  };
  const run = (policy: DispatchPolicy) => {
    const out = new Float32Array(T * H).fill(123); // the layer zeroes the output before Finalize
    moeForward({ backend: refBackend, scratch: new Scratch(), router: softmaxTopKRouter(true), policy }, 0, weights, 2, out, x, T);
    return out;
  };
  const want = run(dynamicDispatch);
  const got = run(oneSlotChunks);
  for (let i = 0; i < T * H; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * (1 + Math.abs(want[i]!)), `element ${i}: ${got[i]} vs ${want[i]}`);
});

test('an unobserved layer measures nothing and returns no stats, with the observed output bit for bit', () => {
  const { T, H, x, weights } = smallLayer();
  const ctx = { backend: refBackend, router: softmaxTopKRouter(true), policy: dynamicDispatch };
  const observed = new Float32Array(T * H);
  let seen = 0;
  const stats = moeForward({ ...ctx, scratch: new Scratch(), observer: () => seen++ }, 0, weights, 2, observed, x, T);
  assert.equal(seen, 1);
  assert.ok(stats && stats.activationBytes > 0, 'an observed layer reports its activation bytes');
  const plain = new Float32Array(T * H);
  assert.equal(moeForward({ ...ctx, scratch: new Scratch() }, 0, weights, 2, plain, x, T), undefined);
  assert.deepEqual(plain, observed);
});
