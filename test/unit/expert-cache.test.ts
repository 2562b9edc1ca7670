// The run-time expert cache (src/memory/buffered-experts.ts) driven as the Experts stage drives it
// (beginLayer -> next/acquire/release per pending expert -> endLayer), over a file of experts: the
// weights handed out are byte-identical to the mapped ones, hits and misses equal a replay of the same
// steps through the simulator's cache code, pinned experts' bytes are never overwritten (slots down to
// one, fewer than the active set), prefetches never change what runs, and pregate/history predict
// what they should.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapFile } from '../../src/tensor/cpu-backend.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { MappedFiles } from '../../src/memory/mapped-files.js';
import { BufferedExperts } from '../../src/memory/buffered-experts.js';
import { ExpertStore } from '../../src/memory/expert-store.js';
import type { ExpertTier } from '../../src/memory/expert-tier.js';
import type { ExpertReadPlan } from '../../src/memory/slot-layout.js';
import { CacheSlots } from '../../src/memory/cache-slots.js';
import { createCachePolicy, ONLINE_CACHE_POLICIES } from '../../src/memory/cache-policies.js';
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import type { MoeWeights } from '../../src/moe/moe-layer.js';
import type { SwiGluWeights } from '../../src/moe/swiglu.js';
import type { Weight } from '../../src/tensor/weight.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32, rng } from '../helpers/random.js';

const [FFN, HIDDEN] = [16, 24];

interface Fixture {
  dir: string;
  layers: (MoeWeights | undefined)[];
  files: MappedFiles;
}

/** L layers (layer 1 dense) of E bf16 experts in one file, at unaligned offsets; routers as given. */
function fixture(E: number, L: number, seed: number, routers?: Float32Array[]): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-cache-'));
  const r = rng(seed);
  const n = FFN * HIDDEN;
  const bytes = Buffer.alloc(L * E * 3 * n * 2 + 64);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  const path = join(dir, 'experts.bin');
  writeFileSync(path, bytes);
  const files = new MappedFiles(mapFile);
  const buf = files.map(path);
  let at = 6;
  const view = (name: string, shape: number[]): Weight => {
    const w: Weight = { name, dtype: 'bf16', shape, data: new Uint16Array(buf, at, n) };
    at += n * 2;
    return w;
  };
  const layers = Array.from({ length: L }, (_, l): MoeWeights | undefined => {
    if (l === 1) return undefined;
    const experts: SwiGluWeights[] = [];
    for (let e = 0; e < E; e++) experts.push({ gate: view(`${l}.${e}.g`, [FFN, HIDDEN]), up: view(`${l}.${e}.u`, [FFN, HIDDEN]), down: view(`${l}.${e}.d`, [HIDDEN, FFN]) });
    return { router: f32Weight(`${l}.router`, [E, HIDDEN], routers?.[l] ?? randomF32(E * HIDDEN, seed * 31 + l)), experts };
  });
  return { dir, layers, files };
}

function same(a: Weight, b: Weight): boolean {
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
}

/** Runs one layer's experts the way runExperts does, checking each acquired expert's bytes after every
 *  read in flight has landed (a read into a pinned slot would have changed them). */
function runLayer(p: BufferedExperts, fx: Fixture, layer: number, active: number[], hidden: Float32Array, tokens: number): number[] {
  p.beginLayer(layer, active);
  const pending = [...active];
  const order: number[] = [];
  while (pending.length > 0) {
    const e = p.next(layer, pending);
    assert.ok(pending.includes(e), `next chose ${e}, not pending`);
    pending.splice(pending.indexOf(e), 1);
    const w = p.acquire(layer, e);
    for (let s = 0; s < p.store.slots; s++) p.store.settle(s);
    for (const role of ['gate', 'up', 'down'] as const) assert.ok(same(w[role], fx.layers[layer]!.experts[e]![role]), `layer ${layer} expert ${e} ${role}: wrong bytes`);
    p.release(layer, e);
    order.push(e);
  }
  p.endLayer(layer, hidden, tokens);
  return order;
}

const router = softmaxTopKRouter(true);

/** Steps of active sets per MoE layer, routed from random hidden states (so pregate has a signal). */
function routedSteps(fx: Fixture, steps: number, tokens: number, k: number, seed: number) {
  const out: { hidden: Float32Array; active: Map<number, number[]> }[] = [];
  for (let s = 0; s < steps; s++) {
    const hidden = randomF32(tokens * HIDDEN, seed + s * 7, 2);
    const active = new Map<number, number[]>();
    for (const [l, w] of fx.layers.entries()) {
      if (!w) continue;
      const E = w.experts.length;
      const logits = new Float32Array(tokens * E);
      refBackend.matmul(logits, hidden, w.router, tokens);
      const routing = router.route({ logits, hidden, tokens, numExperts: E, k, layer: l, weights: w });
      active.set(l, [...new Set(routing.experts)].filter((e) => e >= 0).sort((a, b) => a - b));
    }
    out.push({ hidden, active });
  }
  return out;
}

for (const policy of ONLINE_CACHE_POLICIES) {
  test(`${policy}: bytes right, hits and misses equal the simulator's replay, for slots 1..E`, () => {
    const E = 10;
    const fx = fixture(E, 3, 3);
    try {
      const steps = routedSteps(fx, 12, 3, 2, 100);
      for (const slots of [1, 2, 3, 5, E]) {
        const p = new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots, policy, prefetch: 'none', ioThreads: 2 });
        const sims = new Map([0, 2].map((l) => [l, new CacheSlots(E, slots, createCachePolicy(policy, E))]));
        let simHits = 0;
        let simRequests = 0;
        try {
          for (const { hidden, active } of steps) {
            for (const [l, act] of active) {
              runLayer(p, fx, l, act, hidden, 3);
              const sim = sims.get(l)!;
              sim.beginStep(act);
              for (const e of act) simHits += sim.access(e) ? 1 : 0;
              simRequests += act.length;
            }
          }
          const st = p.stats();
          assert.equal(st.hits, simHits, `slots ${slots}: hits`);
          assert.equal(st.hits + st.misses, simRequests, `slots ${slots}: requests`);
          assert.ok(st.bytesRead >= st.misses * FFN * HIDDEN * 2 * 3, `slots ${slots}: bytes read ${st.bytesRead}`);
          assert.equal(st.tokens, 3 * steps.length);
          if (slots === E) assert.equal(st.misses, new Set(steps.flatMap((s) => [...s.active.entries()].flatMap(([l, a]) => a.map((e) => `${l}.${e}`)))).size);
        } finally {
          p.close();
        }
      }
    } finally {
      rmSync(fx.dir, { recursive: true, force: true });
    }
  });
}

test('a cache smaller than the active set: experts stream through two slots, the resident one runs first', () => {
  const E = 6;
  const fx = fixture(E, 1, 5);
  try {
    const p = new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots: 2, policy: 'lifo', prefetch: 'none' });
    try {
      runLayer(p, fx, 0, [5], new Float32Array(HIDDEN), 1);
      // 5 is resident; 0 takes the free slot, 1 and 2 (every resident expert is active, so LIFO takes the
      // newest) wait behind 0 and 1 in that slot; 5 is a hit and runs before any read lands
      const order = runLayer(p, fx, 0, [0, 1, 2, 5], new Float32Array(HIDDEN), 1);
      assert.equal(order[0], 5);
      assert.deepEqual(order.slice(1), [0, 1, 2]);
      const st = p.stats();
      assert.equal(st.hits, 1);
      assert.equal(st.misses, 4);
    } finally {
      p.close();
    }
  } finally {
    rmSync(fx.dir, { recursive: true, force: true });
  }
});

test('pregate with the next layer routing like this one predicts exactly; every hit is a prefetch hit', () => {
  const E = 12;
  const shared = randomF32(E * HIDDEN, 77);
  const fx = fixture(E, 3, 9, [shared, shared, shared]);
  try {
    const steps = routedSteps(fx, 6, 2, 2, 300);
    const p = new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots: 4, policy: 'lru', prefetch: 'pregate' });
    try {
      for (const { hidden, active } of steps) for (const [l, act] of active) runLayer(p, fx, l, act, hidden, 2);
      const st = p.stats();
      assert.equal(st.prefetchPrecision, 1);
      assert.equal(st.prefetchRecall, 1);
      // layer 2 hits are all prefetched; layer 0 is never prefetched
      assert.ok(st.prefetchHits >= steps.length, `prefetch hits ${st.prefetchHits}`);
      assert.ok(st.prefetchLoads > 0);
    } finally {
      p.close();
    }
  } finally {
    rmSync(fx.dir, { recursive: true, force: true });
  }
});

test('history predicts a repeating pattern exactly after its first step; precision/recall NaN without predictions', () => {
  const E = 8;
  const fx = fixture(E, 3, 11);
  try {
    const p = new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots: 3, policy: 'fifo', prefetch: 'history' });
    const q = new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots: 3, policy: 'fifo', prefetch: 'none' });
    try {
      const h = new Float32Array(HIDDEN);
      for (let s = 0; s < 5; s++) {
        const a = s % 2 === 0 ? [1, 4] : [2, 6];
        const b = s % 2 === 0 ? [0, 3, 7] : [5];
        for (const x of [p, q]) {
          runLayer(x, fx, 0, a, h, 1);
          runLayer(x, fx, 2, b, h, 1);
        }
      }
      const st = p.stats();
      // step 0 has no history (an empty prediction counts as made), step 1 pairs 2,6 -> nothing yet, from step 2 on exact
      assert.ok(st.prefetchPrecision === 1, `precision ${st.prefetchPrecision}`);
      assert.ok(st.prefetchRecall > 0.5 && st.prefetchRecall < 1, `recall ${st.prefetchRecall}`);
      assert.ok(Number.isNaN(q.stats().prefetchPrecision));
    } finally {
      p.close();
      q.close();
    }
  } finally {
    rmSync(fx.dir, { recursive: true, force: true });
  }
});

test('options are checked before anything is allocated', () => {
  const fx = fixture(4, 1, 13);
  try {
    const mk = (o: Partial<{ slots: number; policy: string; prefetch: string }>) => () =>
      new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots: 2, policy: 'lifo', prefetch: 'none', ...o }).close();
    assert.throws(mk({ policy: 'belady' }), /needs the future/);
    assert.throws(mk({ policy: 'mru' }), /unknown cache policy/);
    assert.throws(mk({ prefetch: 'oracle' }), /unknown prefetch mode 'oracle'/);
    assert.throws(mk({ slots: 0 }), /positive integer/);
  } finally {
    rmSync(fx.dir, { recursive: true, force: true });
  }
});

test('the fast tier is an interface: a wrapped tier sees one copy per miss and per prefetch, nothing else', () => {
  const E = 8;
  const fx = fixture(E, 3, 21);
  try {
    let copies = 0;
    let background = 0;
    const tier = (slots: number, slotBytes: number): ExpertTier => {
      const inner = new ExpertStore(slots, slotBytes, 1);
      return Object.assign(Object.create(inner) as ExpertTier, {
        load(slot: number, plan: ExpertReadPlan, what: string, bg = false) {
          copies++;
          if (bg) background++;
          inner.load(slot, plan, what, bg);
        },
      });
    };
    const p = new BufferedExperts(fx.layers, fx.files, { router, k: 2, backend: refBackend }, { slots: 3, policy: 'lfu', prefetch: 'pregate', tier });
    try {
      for (const { hidden, active } of routedSteps(fx, 5, 2, 2, 500)) for (const [l, act] of active) runLayer(p, fx, l, act, hidden, 2);
      const st = p.stats();
      assert.equal(copies, st.misses + st.prefetchLoads);
      assert.equal(background, st.prefetchLoads);
      assert.match(p.store.readMode, /reads/);
    } finally {
      p.close();
    }
  } finally {
    rmSync(fx.dir, { recursive: true, force: true });
  }
});
