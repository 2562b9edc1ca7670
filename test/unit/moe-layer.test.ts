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
