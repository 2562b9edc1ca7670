// Expert buffering end to end (docs/memory.md): a model loaded with an expert cache gives logits and
// greedy ids identical to the memory-mapped engine, for every on-line eviction rule, every prefetch
// mode and budgets down to one slot per MoE layer, on all four architectures with 32 experts; its hits and misses are
// those of the simulator's cache code replaying the run's own routing; a shard truncated after load is
// a clear E_IO, not garbage weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import { loadModel, type Model } from '../../src/model/model.js';
import type { LoadOptions } from '../../src/model/model.js';
import { CacheSlots } from '../../src/memory/cache-slots.js';
import { createCachePolicy, ONLINE_CACHE_POLICIES } from '../../src/memory/cache-policies.js';
import { PREFETCH_NAMES } from '../../src/memory/prefetchers.js';
import { DEFAULT_CACHE_POLICY } from '../../src/memory/expert-cache-setup.js';
import type { DispatchPlan } from '../../src/moe/dispatch.js';
import { cli, cliOk } from '../reference/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'moesaic-expert-cache-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const PROMPTS = [[5, 17, 300, 41, 9, 9], [250, 3, 77]];
const IDS = [1, 17, 300, 42, 7, 7, 511];

interface Run {
  logits: Float32Array[];
  greedy: number[][];
  /** per MoE layer, per step: the active experts (from the dispatch plan, as the cache sees them) */
  active: Map<number, number[][]>;
}

async function run(model: Model): Promise<Run> {
  const active = new Map<number, number[][]>();
  const observer = (layer: number, _r: unknown, plan: DispatchPlan) => {
    const act: number[] = [];
    for (let e = 0; e + 1 < plan.offsets.length; e++) if (plan.offsets[e + 1]! > plan.offsets[e]!) act.push(e);
    if (!active.has(layer)) active.set(layer, []);
    active.get(layer)!.push(act);
  };
  const logits = model.logits(IDS, observer);
  const greedy = await model.generateBatch(PROMPTS, { maxTokens: 6, stopAtEos: false, observer });
  return { logits, greedy, active };
}

/** Hits of the simulator's cache code replaying the run's steps (beginStep, then ascending access). */
function replayHits(active: Map<number, number[][]>, experts: number, policy: string, slots: number): { hits: number; requests: number } {
  let hits = 0;
  let requests = 0;
  for (const steps of active.values()) {
    const cache = new CacheSlots(experts, Math.min(slots, experts), createCachePolicy(policy, experts));
    for (const act of steps) {
      cache.beginStep(act);
      for (const e of act) hits += cache.access(e) ? 1 : 0;
      requests += act.length;
    }
  }
  return { hits, requests };
}

const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const;

for (const [i, arch] of ARCHS.entries()) {
  test(`${arch}: buffered experts give the mapped engine's exact logits and greedy ids, and the simulator's hits`, async () => {
    const out = join(dir, arch);
    await generateModel({ arch, size: 'tiny', out, seed: 11 + i, dtype: i % 2 === 0 ? 'bf16' : 'f32', skew: 1, experts: 32 });
    const mapped = await loadModel(out);
    const wantDynamic = await run(mapped);
    const E = mapped.config.numExperts;
    const settings: LoadOptions[] = [];
    for (const cachePolicy of ONLINE_CACHE_POLICIES) for (const expertCacheSlots of [1, 5]) settings.push({ cachePolicy, expertCacheSlots, prefetch: 'none' });
    for (const prefetch of PREFETCH_NAMES) for (const expertCacheSlots of [1, 2, E]) settings.push({ cachePolicy: 'lru', expertCacheSlots, prefetch });
    settings.push({ expertCache: { share: 0.5 }, prefetch: 'pregate' }, { expertCache: { share: 1 }, gating: 'fastmoe' });
    for (const s of settings) {
      const model = await loadModel(out, s);
      const what = JSON.stringify(s);
      try {
        // fastmoe runs each expert as its own chunk (one Experts stage per expert): compare with itself mapped
        const want = s.gating ? await run(await loadModel(out, { gating: s.gating })) : wantDynamic;
        const got = await run(model);
        assert.equal(got.logits.length, want.logits.length);
        got.logits.forEach((row, t) => assert.deepEqual(row, want.logits[t], `${what}: logits at position ${t}`));
        assert.deepEqual(got.greedy, want.greedy, `${what}: greedy ids`);
        const st = model.expertCacheStats()!;
        const requests = [...got.active.values()].flat().reduce((n, a) => n + a.length, 0);
        assert.equal(st.hits + st.misses, requests, `${what}: requests`);
        if (s.prefetch === 'none') {
          const slots = s.expertCacheSlots ?? model.expertCache!.sizing.slotsPerLayer;
          const sim = replayHits(got.active, E, s.cachePolicy ?? DEFAULT_CACHE_POLICY, slots);
          assert.equal(st.hits, sim.hits, `${what}: hits equal the simulator's`);
        } else if (s.prefetch !== undefined) {
          assert.ok(st.prefetchLoads >= 0 && (Number.isNaN(st.prefetchPrecision) || (st.prefetchPrecision >= 0 && st.prefetchPrecision <= 1)), `${what}: precision`);
        }
        assert.ok(st.bytesRead > 0 && st.residentBytes > 0 && st.residentBytes <= st.arenaBytes, `${what}: bytes`);
      } finally {
        model.close();
      }
    }
  });
}

test('the chosen sizes are reported, and option misuse is one clear error', async () => {
  const out = join(dir, 'mixtral');
  const model = await loadModel(out, { expertCache: { share: 0.25 } });
  try {
    const c = model.expertCache!;
    assert.equal(c.sizing.slotsPerLayer, 8); // 25% of 32 experts
    assert.match(c.summary, /8 of 32 experts per MoE layer x 2 layers/);
    assert.match(c.summary, new RegExp(`policy ${DEFAULT_CACHE_POLICY}, prefetch none`));
  } finally {
    model.close();
  }
  await assert.rejects(loadModel(out, { prefetch: 'pregate' }), /--prefetch needs an expert cache/);
  await assert.rejects(loadModel(out, { cachePolicy: 'lru' }), /--cache-policy needs an expert cache/);
  await assert.rejects(loadModel(out, { expertCacheSlots: 2, expertCache: { share: 0.5 } }), /not both/);
  await assert.rejects(loadModel(out, { expertCache: { bytes: 1000 } }), /less than one expert per MoE layer/);
});

test('a shard of experts truncated after load: generation fails with E_IO naming the expert, never runs garbage', async () => {
  const out = join(dir, 'sharded');
  await generateModel({ arch: 'mixtral', size: 'tiny', out, seed: 5, dtype: 'bf16', shardMb: 0.06 });
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  // a shard that holds expert tensors only, so the mapped (non-expert) weights stay whole
  const shards = readdirSync(out).filter((f) => f.endsWith('.safetensors'));
  const expertOnly = shards.find((f) => {
    const names = Object.entries(index.weight_map).filter(([, s]) => s === f).map(([n]) => n);
    return names.length > 0 && names.every((n) => n.includes('.experts.'));
  });
  assert.ok(expertOnly, `no expert-only shard among ${shards.join(', ')}`);
  const model = await loadModel(out, { expertCacheSlots: 1 });
  try {
    truncateSync(join(out, expertOnly), 4096);
    await assert.rejects(
      model.generateBatch([[1, 2, 3, 4, 5, 6, 7, 8]], { maxTokens: 4, stopAtEos: false }),
      (e: Error & { code?: string }) => e.code === 'E_IO' && /cannot read expert \d+ of layer \d+: short read/.test(e.message) && e.message.includes(expertOnly),
    );
  } finally {
    model.close();
  }
});

test('CLI: `generate --trace` with a cache, then `simulate cache` on that trace, same policy and slots: the same hits and misses', () => {
  const out = join(dir, 'mixtral');
  for (const [policy, slots] of [['lifo', 1], ['lru', 3], ['lfu', 2], ['fifo', 5]] as const) {
    const trace = join(dir, `run-${policy}.jsonl`);
    const gen = cli(['generate', '--model', out, '--ids', '5,17,300,41,9,9,2', '--max-tokens', '12', '--no-eos', '--json', '--stats', '--trace', trace, '--expert-cache-slots', String(slots), '--cache-policy', policy]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.match(gen.stderr, new RegExp(`expert cache: ${slots} of 32 experts per MoE layer x 2 layers`));
    assert.match(gen.stderr, /hits, \d+ misses \(miss rate/);
    const run = (JSON.parse(gen.stdout) as { expert_cache: { hits: number; misses: number } }).expert_cache;
    const sim = JSON.parse(cliOk(['simulate', 'cache', '--trace', trace, '--policy', policy, '--slots', String(slots), '--json'])) as { hits: number; misses: number };
    assert.deepEqual({ hits: sim.hits, misses: sim.misses }, { hits: run.hits, misses: run.misses }, `${policy}, ${slots} slots`);
  }
  const bad = cli(['generate', '--model', out, '--ids', '1,2', '--prefetch', 'pregate']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /^moesaic: error \[E_BAD_OPTION\]: --prefetch needs an expert cache/m);
});

test('GGUF (a layer\'s experts stacked in one tensor; bf16 and Q8_0 blocks): buffered logits equal the mapped ones', async () => {
  const out = join(dir, 'qwen3_moe');
  for (const type of ['bf16', 'q8_0']) {
    const gguf = join(dir, `experts-${type}.gguf`);
    cliOk(['export-gguf', '--model', out, '--out', gguf, '--type', type]);
    const mapped = await loadModel(gguf);
    const want = mapped.logits(IDS);
    for (const [cachePolicy, expertCacheSlots] of [['lru', 1], ['lfu', 5]] as const) {
      const model = await loadModel(gguf, { expertCacheSlots, cachePolicy });
      try {
        model.logits(IDS).forEach((row, t) => assert.deepEqual(row, want[t], `${type} ${cachePolicy}/${expertCacheSlots}: logits at position ${t}`));
        assert.ok(model.expertCacheStats()!.misses > 0);
      } finally {
        model.close();
      }
    }
  }
});
