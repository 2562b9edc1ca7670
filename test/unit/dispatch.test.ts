// The five dispatch policies: same outputs where dropless, exact drops for static, and the
// activation bytes each plan reports equal to what its execution actually asks for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshBuffers } from '../../src/moe/buffers.js';
import type { DispatchPolicy } from '../../src/moe/dispatch.js';
import { staticDispatch } from '../../src/moe/dispatch-static.js';
import { moeForward } from '../../src/moe/moe-layer.js';
import type { LayerStats, MoeWeights } from '../../src/moe/moe-layer.js';
import { DISPATCH_POLICY_NAMES, dispatchPolicy } from '../../src/moe/policies.js';
import { expertChoiceRouter } from '../../src/moe/router-expert-choice.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import type { Router, Routing } from '../../src/moe/routing.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { Scratch } from '../../src/tensor/scratch.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32 as rand } from '../helpers/random.js';


const H = 8;
const F = 6;

function layer(E: number, seed: number): MoeWeights {
  return {
    router: f32Weight('router', [E, H], rand(E * H, seed, 4)),
    experts: Array.from({ length: E }, (_, e) => ({
      gate: f32Weight(`g${e}`, [F, H], rand(F * H, seed + 10 + e)),
      up: f32Weight(`u${e}`, [F, H], rand(F * H, seed + 50 + e)),
      down: f32Weight(`d${e}`, [H, F], rand(H * F, seed + 90 + e)),
    })),
  };
}

/** Expert e on one token, float64, straight from the SwiGLU formula. */
function expertRow(w: MoeWeights, e: number, x: Float32Array, t: number): Float64Array {
  const ex = w.experts[e]!;
  const g = ex.gate.data as Float32Array, u = ex.up.data as Float32Array, d = ex.down.data as Float32Array;
  const act = Array.from({ length: F }, (_, f) => {
    let a = 0, b = 0;
    for (let i = 0; i < H; i++) {
      a += x[t * H + i]! * g[f * H + i]!;
      b += x[t * H + i]! * u[f * H + i]!;
    }
    return (a / (1 + Math.exp(-a))) * b;
  });
  return Float64Array.from({ length: H }, (_, i) => act.reduce((s, v, f) => s + v * d[i * F + f]!, 0));
}

/** out[t] = Σ over kept assignments a of w_a · expert(x_t): the definition every policy must meet. */
function direct(w: MoeWeights, x: Float32Array, routing: Routing, kept: (a: number) => boolean): Float64Array {
  const out = new Float64Array(routing.tokens * H);
  for (let a = 0; a < routing.experts.length; a++) {
    const e = routing.experts[a]!;
    if (e < 0 || !kept(a)) continue;
    const t = Math.floor(a / routing.k);
    const y = expertRow(w, e, x, t);
    for (let i = 0; i < H; i++) out[t * H + i]! += routing.weights[a]! * y[i]!;
  }
  return out;
}

/** A router that returns a fixed routing, so a test controls exactly who goes where. */
function fixed(routing: Routing): Router {
  return { name: 'fixed', route: () => routing };
}

interface Run {
  out: Float32Array;
  stats: LayerStats;
  plan: { dropped: number; padded: number; activationBytes: number; slotOf: Int32Array; capacity: number; offsets: Int32Array };
}

function run(policy: DispatchPolicy, router: Router, w: MoeWeights, x: Float32Array, T: number, k: number): Run {
  const out = new Float32Array(T * H).fill(NaN); // policies must write every element
  let plan: Run['plan'] | undefined;
  const stats = moeForward({ backend: refBackend, scratch: new Scratch(), router, policy, observer: (_l, _r, p) => (plan = p) }, 0, w, k, out, x, T);
  return { out, stats: stats!, plan: plan! };
}

function close(got: Float32Array, want: Float64Array, what: string, tol = 1e-5): void {
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < tol, `${what}: element ${i}: ${got[i]} vs ${want[i]}`);
}

test('every policy computes Σ w·expert(x) over its kept assignments; dropless ones keep all', () => {
  const T = 13, E = 5, k = 2;
  const w = layer(E, 1);
  const x = rand(T * H, 2);
  const router = softmaxTopKRouter(true);
  const logits = new Float32Array(T * E);
  refBackend.matmul(logits, x, w.router, T);
  const routing = router.route({ logits, hidden: x, tokens: T, numExperts: E, k, layer: 0, weights: w });
  const all = direct(w, x, routing, () => true);
  for (const name of DISPATCH_POLICY_NAMES) {
    for (const opts of [{}, { capacityFactor: 0.2, blockSize: 4 }]) {
      const policy = dispatchPolicy(name, opts);
      const r = run(policy, router, w, x, T, k);
      const kept = (a: number) => r.plan.slotOf[a]! >= 0;
      close(r.out, direct(w, x, routing, kept), `${name} ${JSON.stringify(opts)}`);
      assert.equal(r.stats.activationBytes, r.plan.activationBytes, `${name}: measured activation bytes equal the plan's`);
      for (const v of Object.values(r.stats.times)) assert.ok(v >= 0 && Number.isFinite(v));
      if (policy.dropless || (name === 'static' && !('capacityFactor' in opts))) {
        assert.equal(r.plan.dropped, 0, name);
        close(r.out, all, `${name} equals the dropless sum`);
      }
    }
  }
});

test('static gating drops exactly the assignments GShard\'s capacity rule says (hand-built overflow)', () => {
  // 5 tokens, top-2, 3 experts, C = 0.4: capacity ceil(0.4 · 5) = 2 slots per expert.
  // First choices in token order: t0->0, t1->0, t2->0 (full: drop a=4), t3->1, t4->2.
  // Then second choices: t0->1, t1->2, t2->1 (full: drop a=5), t3->0 (full: drop a=7), t4->1 (full: drop a=9).
  const experts = Int32Array.from([0, 1, 0, 2, 0, 1, 1, 0, 2, 1]);
  const weights = Float32Array.from([0.6, 0.4, 0.7, 0.3, 0.5, 0.5, 0.8, 0.2, 0.9, 0.1]);
  const routing: Routing = { tokens: 5, k: 2, experts, weights };
  const plan = staticDispatch(0.4).plan(routing, { experts: 3, hidden: H, ffn: F });
  assert.equal(plan.capacity, 2);
  assert.deepEqual(Array.from(plan.slots), [0, 2, 6, 1, 8, 3]); // expert 0: a0, a2; expert 1: a6, a1; expert 2: a8, a3
  assert.deepEqual(Array.from(plan.slotOf), [0, 3, 1, 5, -1, -1, 2, -1, 4, -1]);
  assert.equal(plan.dropped, 4);
  assert.equal(plan.padded, 0);
  assert.deepEqual(Array.from(plan.counts), [4, 4, 2]);
  // and the executed output is the sum over exactly the kept six assignments (weights not renormalised)
  const w = layer(3, 3);
  const x = rand(5 * H, 4);
  const r = run(staticDispatch(0.4), fixed(routing), w, x, 5, 2);
  close(r.out, direct(w, x, routing, (a) => ![4, 5, 7, 9].includes(a)), 'static C=0.4');
  assert.equal(r.plan.dropped, 4);
  // C = 1 (the default) has room for every assignment: nothing dropped, 3·5 - 10 = 5 slots padded
  const roomy = staticDispatch().plan(routing, { experts: 3, hidden: H, ffn: F });
  assert.equal(roomy.dropped, 0);
  assert.equal(roomy.padded, 5);
});

test('padding: tutel pads every expert to the largest count, megablocks each group to its block', () => {
  const routing: Routing = { tokens: 5, k: 2, experts: Int32Array.from([0, 1, 0, 2, 0, 1, 1, 0, 2, 1]), weights: new Float32Array(10) };
  const shape = { experts: 4, hidden: H, ffn: F }; // expert 3 gets nothing; counts [4, 4, 2, 0]
  const tutel = dispatchPolicy('tutel').plan(routing, shape);
  assert.equal(tutel.capacity, 4);
  assert.equal(tutel.padded, 4 * 4 - 10);
  const mb = dispatchPolicy('megablocks', { blockSize: 3 }).plan(routing, shape);
  assert.deepEqual(Array.from(mb.offsets), [0, 6, 12, 15, 15]); // ceil(4/3)·3, ceil(4/3)·3, 3, 0
  assert.equal(mb.padded, 15 - 10);
  for (const name of ['dynamic', 'fastmoe']) {
    const p = dispatchPolicy(name).plan(routing, shape);
    assert.equal(p.padded + p.dropped, 0, name);
    assert.deepEqual(Array.from(p.offsets), [0, 4, 8, 10, 10], name);
  }
});

test('static activation memory grows with S² (dispatch and combine masks), dynamic\'s linearly', () => {
  const shape = { experts: 16, hidden: 32, ffn: 64 };
  const bytes = (name: string, T: number) => {
    const experts = Int32Array.from({ length: T * 2 }, (_, a) => (a * 7) % 16);
    return dispatchPolicy(name, { capacityFactor: 0.25 }).plan({ tokens: T, k: 2, experts, weights: new Float32Array(T * 2) }, shape).activationBytes;
  };
  // static: the two masks alone are 2 · S · E · ceil(C·S) floats
  const S = 256, cap = Math.ceil(0.25 * S);
  assert.ok(bytes('static', S) > 4 * 2 * S * 16 * cap);
  assert.ok(bytes('static', 2 * S) / bytes('static', S) > 3.5);
  assert.ok(bytes('dynamic', 2 * S) / bytes('dynamic', S) < 2.1);
  assert.ok(bytes('dynamic', S) < bytes('static', S));
});

test('expert-choice routing (tokens with 0..E experts, -1 slots) runs under every policy', () => {
  const T = 9, E = 4, k = 2;
  const w = layer(E, 5);
  const x = rand(T * H, 6);
  const logits = new Float32Array(T * E);
  refBackend.matmul(logits, x, w.router, T);
  const routing = expertChoiceRouter.route({ logits, hidden: x, tokens: T, numExperts: E, k, layer: 0, weights: w });
  const want = direct(w, x, routing, () => true);
  for (const name of DISPATCH_POLICY_NAMES) {
    const r = run(dispatchPolicy(name), expertChoiceRouter, w, x, T, k);
    close(r.out, want, name);
    assert.equal(r.plan.dropped, 0, name);
  }
});

test('unknown policy and bad policy options fail naming the option', () => {
  assert.throws(() => dispatchPolicy('nope'), /unknown gating policy 'nope'/);
  assert.throws(() => dispatchPolicy('static', { capacityFactor: 0 }), /--capacity-factor/);
  assert.throws(() => dispatchPolicy('megablocks', { blockSize: 0 }), /--block-size/);
  assert.ok(freshBuffers.get('x', 3).length === 3);
});
