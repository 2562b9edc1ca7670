// Each routing function against a direct implementation of its formula.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.js';
import { expertChoiceRouter } from '../../src/moe/router-expert-choice.js';
import { sigmoidGroupRouter } from '../../src/moe/router-sigmoid-group.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import { topKSoftmaxRouter } from '../../src/moe/router-topk-softmax.js';
import { xmoeRouter } from '../../src/moe/router-xmoe.js';
import { ROUTER_NAMES, routerForConfig } from '../../src/moe/routers.js';
import type { Router, RouterInput, Routing } from '../../src/moe/routing.js';
import { parseConfig } from '../../src/model/config.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32 as rand } from '../helpers/random.js';


function input(T: number, E: number, k: number, seed: number, H = 8): RouterInput {
  const hidden = rand(T * H, seed + 100);
  const gate = rand(E * H, seed + 200, 3);
  const logits = new Float32Array(T * E);
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) for (let i = 0; i < H; i++) logits[t * E + e]! += hidden[t * H + i]! * gate[e * H + i]!;
  return { logits, hidden, tokens: T, numExperts: E, k, layer: 0, weights: { router: f32Weight('gate', [E, H], gate) } };
}

/** Direct top-k: sort (value, index) pairs, descending value, ties to the lower index. */
function directTopK(v: number[], k: number): number[] {
  return v.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);
}

function row(inp: RouterInput, t: number): number[] {
  return Array.from(inp.logits.subarray(t * inp.numExperts, (t + 1) * inp.numExperts));
}

function softmax(l: number[]): number[] {
  const m = Math.max(...l);
  const z = l.reduce((a, x) => a + Math.exp(x - m), 0);
  return l.map((x) => Math.exp(x - m) / z);
}

/** Asserts a routing equals per-token expected [expert, weight] lists (in order). */
function expectRouting(r: Routing, want: Array<Array<[number, number]>>, tol = 1e-6): void {
  assert.equal(r.tokens, want.length);
  want.forEach((w, t) => {
    for (let j = 0; j < r.k; j++) {
      const e = r.experts[t * r.k + j]!;
      if (j >= w.length) {
        assert.equal(e, -1, `token ${t} slot ${j} should be empty`);
        continue;
      }
      assert.equal(e, w[j]![0], `token ${t} slot ${j} expert`);
      assert.ok(Math.abs(r.weights[t * r.k + j]! - w[j]![1]) < tol, `token ${t} slot ${j} weight ${r.weights[t * r.k + j]} vs ${w[j]![1]}`);
    }
  });
}

for (const renorm of [false, true]) {
  test(`softmax->top-k (renormalise=${renorm}) is p = softmax(l), top-k of p${renorm ? ', divided by their sum' : ''}`, () => {
    const inp = input(9, 7, 3, 1);
    const want = Array.from({ length: 9 }, (_, t) => {
      const p = softmax(row(inp, t));
      const top = directTopK(p, 3);
      const sum = top.reduce((a, e) => a + p[e]!, 0);
      return top.map((e) => [e, renorm ? p[e]! / sum : p[e]!] as [number, number]);
    });
    expectRouting(softmaxTopKRouter(renorm).route(inp), want);
  });
}

test('top-k->softmax is a softmax over the k largest logits, equal to renormalised softmax->top-k', () => {
  const inp = input(11, 8, 2, 2);
  const want = Array.from({ length: 11 }, (_, t) => {
    const l = row(inp, t);
    const top = directTopK(l, 2);
    const p = softmax(top.map((e) => l[e]!));
    return top.map((e, j) => [e, p[j]!] as [number, number]);
  });
  expectRouting(topKSoftmaxRouter.route(inp), want);
  expectRouting(softmaxTopKRouter(true).route(inp), want);
});

test('Switch top-1 keeps the most probable expert with its raw probability, whatever the config k', () => {
  const inp = input(6, 5, 3, 3);
  const r = routerForConfig(parseConfig(tinyRaw()), 'switch-top1').route(inp);
  assert.equal(r.k, 1);
  expectRouting(r, Array.from({ length: 6 }, (_, t) => {
    const p = softmax(row(inp, t));
    const e = directTopK(p, 1)[0]!;
    return [[e, p[e]!]];
  }));
});

test('GShard top-2 keeps two experts with g_i / (g_1 + g_2), whatever the config k', () => {
  const inp = input(6, 5, 1, 4);
  const r = routerForConfig(parseConfig(tinyRaw()), 'gshard-top2').route(inp);
  assert.equal(r.k, 2);
  expectRouting(r, Array.from({ length: 6 }, (_, t) => {
    const p = softmax(row(inp, t));
    const [a, b] = directTopK(p, 2) as [number, number];
    return [[a, p[a]! / (p[a]! + p[b]!)], [b, p[b]! / (p[a]! + p[b]!)]];
  }));
});

/** DeepSeek-V3's gate, written out: sigmoid, bias for the choice, group top-2 sums, top groups, top-k, scale. */
function directDeepSeek(l: number[], bias: number[], groups: number, topGroups: number, k: number, norm: boolean, scale: number): Array<[number, number]> {
  const s = l.map((x) => 1 / (1 + Math.exp(-x)));
  const c = s.map((x, e) => x + bias[e]!);
  const size = l.length / groups;
  const gScore = Array.from({ length: groups }, (_, g) => {
    const sorted = c.slice(g * size, (g + 1) * size).sort((a, b) => b - a);
    return sorted[0]! + (sorted[1] ?? 0);
  });
  const keep = directTopK(gScore, topGroups);
  const masked = c.map((x, e) => (keep.includes(Math.floor(e / size)) ? x : -Infinity));
  const top = directTopK(masked, k);
  const sum = top.reduce((a, e) => a + s[e]!, 0);
  return top.map((e) => [e, (norm ? s[e]! / (sum + 1e-20) : s[e]!) * scale]);
}

test('sigmoid + correction bias + group-limited top-k matches the DeepSeek-V3 formula', () => {
  const E = 16;
  const inp0 = input(10, E, 3, 5);
  const bias = Array.from(rand(E, 77, 0.6));
  const inp = { ...inp0, weights: { ...inp0.weights, routerBias: f32Weight('bias', [E], Float32Array.from(bias)) } };
  for (const [groups, topGroups, norm, scale] of [[4, 2, true, 2.5], [1, 1, false, 1], [8, 3, true, 1]] as const) {
    const r = sigmoidGroupRouter({ groups, topGroups, normalize: norm, scale }).route(inp);
    expectRouting(r, Array.from({ length: 10 }, (_, t) => directDeepSeek(row(inp, t), bias, groups, topGroups, 3, norm, scale)));
  }
});

test('sigmoid router: the bias moves the choice but never the weights; masked groups never win', () => {
  // one token, 4 experts in 2 groups; logits give sigmoid scores s
  const logits = Float32Array.from([2, 1, 0.5, 0.4]);
  const base = { logits, hidden: new Float32Array(4), tokens: 1, numExperts: 4, k: 1, layer: 0 };
  const router = f32Weight('gate', [4, 1], new Float32Array(4));
  const r1 = sigmoidGroupRouter({ groups: 1, topGroups: 1, normalize: false, scale: 1 });
  assert.equal(r1.route({ ...base, weights: { router } }).experts[0], 0);
  // bias +1 on expert 3 makes it win the choice; its weight is still its own sigmoid, 1/(1+e^-0.4)
  const biased = { router, routerBias: f32Weight('b', [4], Float32Array.from([0, 0, 0, 1])) };
  const r = r1.route({ ...base, weights: biased });
  assert.equal(r.experts[0], 3);
  assert.ok(Math.abs(r.weights[0]! - 1 / (1 + Math.exp(-0.4))) < 1e-7);
  // 2 groups, 1 kept: group {2,3} scores s2+s3+1 > s0+s1 with the bias, so expert 0 is masked out
  const g = sigmoidGroupRouter({ groups: 2, topGroups: 1, normalize: true, scale: 1 }).route({ ...base, k: 2, weights: biased });
  assert.deepEqual(Array.from(g.experts), [3, 2]);
});

test('X-MoE: cosine of the projected, L2-normalised token and expert embedding over τ, softmax, top-k', () => {
  const T = 7, E = 6, H = 8, R = 3, tau = 0.5;
  const inp0 = input(T, E, 2, 6, H);
  const proj = rand(R * H, 8);
  const emb = rand(E * R, 9);
  const inp = { ...inp0, weights: { ...inp0.weights, xmoeProjection: f32Weight('p', [R, H], proj), xmoeExperts: f32Weight('x', [E, R], emb) } };
  const r = xmoeRouter({ rank: R, temperature: tau, renormalize: false, seed: 0 }).route(inp);
  expectRouting(r, Array.from({ length: T }, (_, t) => {
    const z = Array.from({ length: R }, (_, i) => {
      let s = 0;
      for (let h = 0; h < H; h++) s += proj[i * H + h]! * inp.hidden[t * H + h]!;
      return s;
    });
    const cos = Array.from({ length: E }, (_, e) => {
      const v = Array.from(emb.subarray(e * R, (e + 1) * R));
      const dot = z.reduce((a, x, i) => a + x * v[i]!, 0);
      return dot / Math.hypot(...z) / Math.hypot(...v) / tau;
    });
    const p = softmax(cos);
    return directTopK(p, 2).map((e) => [e, p[e]!] as [number, number]);
  }), 1e-5);
});

test('X-MoE without checkpoint weights uses the documented seeded projection and projected gate rows', () => {
  const T = 5, E = 4, H = 8, R = 3;
  const inp = input(T, E, 2, 10, H);
  const derived = xmoeRouter({ rank: R, temperature: 0.07, renormalize: true, seed: 42 });
  const a = derived.route(inp);
  const again = xmoeRouter({ rank: R, temperature: 0.07, renormalize: true, seed: 42 }).route(inp);
  assert.deepEqual(a, again, 'deterministic for a seed');
  // rebuild the documented derivation by hand: W ~ N(0, 1/R) from stream xmoe.proj.<layer>, e_i = W r_i
  const w = new Float64Array(R * H);
  new Rng(42, 'xmoe.proj.0').fillNormal(w, 1 / Math.sqrt(R));
  const gate = inp.weights.router.data as Float32Array;
  const emb = new Float32Array(E * R);
  for (let e = 0; e < E; e++) for (let i = 0; i < R; i++) for (let h = 0; h < H; h++) emb[e * R + i]! += w[i * H + h]! * gate[e * H + h]!;
  const explicit = { ...inp, weights: { ...inp.weights, xmoeProjection: f32Weight('p', [R, H], Float32Array.from(w)), xmoeExperts: f32Weight('x', [E, R], emb) } };
  const b = xmoeRouter({ rank: R, temperature: 0.07, renormalize: true, seed: 0 }).route(explicit);
  assert.deepEqual(Array.from(a.experts), Array.from(b.experts));
  for (let i = 0; i < a.weights.length; i++) assert.ok(Math.abs(a.weights[i]! - b.weights[i]!) < 1e-4);
});

test('expert-choice: each expert takes its top-C tokens by softmax probability; tokens get 0..E experts', () => {
  const T = 10, E = 4, k = 2;
  const inp = input(T, E, k, 11);
  const r = expertChoiceRouter.route(inp);
  const C = Math.ceil((T * k) / E);
  const p = Array.from({ length: T }, (_, t) => softmax(row(inp, t)));
  const want: Array<Array<[number, number]>> = Array.from({ length: T }, () => []);
  for (let e = 0; e < E; e++) for (const t of directTopK(p.map((q) => q[e]!), C)) want[t]!.push([e, p[t]![e]!]);
  for (const w of want) w.sort((a, b) => b[1] - a[1]);
  assert.equal(r.k, Math.max(...want.map((w) => w.length)));
  expectRouting(r, want);
  const perExpert = new Array(E).fill(0);
  for (const e of r.experts) if (e >= 0) perExpert[e]++;
  assert.deepEqual(perExpert, new Array(E).fill(C), 'perfectly balanced');
});

test('expert-choice can leave a token with no expert', () => {
  // 3 tokens, 3 experts, C = ceil(3*1/3) = 1; token 0 is uniform (1/3 each), tokens 1 and 2 put 0.49 on two
  // experts: expert 0 takes token 1, expert 1 token 2, expert 2 ties 1 and 2 (lower index wins): token 0 gets none
  const logits = Float32Array.from([0, 0, 0, 3, 0, 3, 0, 3, 3]);
  const r = expertChoiceRouter.route({ logits, hidden: new Float32Array(3), tokens: 3, numExperts: 3, k: 1, layer: 0, weights: { router: f32Weight('g', [3, 1], new Float32Array(3)) } });
  assert.equal(r.k, 2);
  assert.deepEqual(Array.from(r.experts), [-1, -1, 0, 2, 1, -1]);
  assert.deepEqual(Array.from(r.experts.subarray(0, r.k)), new Array(r.k).fill(-1));
});

test('every registered router is reachable by name and the family default follows config', () => {
  const cfg = parseConfig(tinyRaw());
  for (const name of ROUTER_NAMES) assert.equal(routerForConfig(cfg, name).name, name);
  assert.equal(routerForConfig(cfg).name, 'softmax-topk-norm'); // Mixtral renormalises
  assert.equal(routerForConfig(parseConfig({ ...tinyRaw(), scoring_func: 'sigmoid', n_group: 2, topk_group: 1 })).name, 'sigmoid-group');
  assert.throws(() => routerForConfig(cfg, 'nope'), /unknown router 'nope'/);
});

function tinyRaw(): Record<string, unknown> {
  return { model_type: 'mixtral', hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, num_local_experts: 4, num_experts_per_tok: 2, intermediate_size: 16, vocab_size: 32 };
}
export type { Router };

test('topK: descending, ties to the lower index, -inf never chosen, both the selection and the sort path', async () => {
  const { topK } = await import('../../src/moe/routing.js');
  const v = [3, 5, -Infinity, 5, 1, 3, 9, -Infinity, 0, 5, 2, 7];
  for (const k of [1, 2, 3, 5, 8, 9, 12]) {
    const want = v.map((x, i) => [x, i] as const).filter(([x]) => x !== -Infinity).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);
    assert.deepEqual(topK(v, 0, v.length, k), want, `k=${k}`);
  }
  assert.deepEqual(topK([0, 4, 4, 1], 1, 3, 2), [0, 1], 'offsets are relative to off');
});
