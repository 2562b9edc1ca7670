// Gating policies on a whole model: `--gating P` through the CLI and the library on a tiny synthetic Mixtral
// and Qwen2-MoE (shared expert). Dropless policies equal dynamic gating and the float64 reference;
// static with room for everything equals them too; static with a small capacity drops exactly the
// assignments GShard's rule says, layer by layer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../src/model/model.js';
import type { DispatchPlan } from '../../src/moe/dispatch.js';
import { DISPATCH_POLICY_NAMES } from '../../src/moe/policies.js';
import type { Routing } from '../../src/moe/routing.js';
import { loadReference, referenceLogits } from '../reference/hf-reference.js';
import { existsSync, readFileSync } from 'node:fs';
import { cliOk, compareRows, genModel, removeDir, tempDir } from '../reference/harness.js';

const IDS = [1, 17, 300, 42, 511, 7, 7, 99, 5, 250, 3, 64, 128, 9, 400, 77];
const DROPLESS_TOL = 1e-5; // vs dynamic, same backend: only summation order differs
const REF_TOL = 1e-4; // vs the float64 reference, as test/model/logits.test.ts

/** GShard's capacity rule written out: first choices in token order, then second choices, ... */
function expectedDrops(r: Routing, E: number, C: number): Set<number> {
  const cap = Math.max(1, Math.ceil(C * r.tokens));
  const fill = new Array<number>(E).fill(0);
  const dropped = new Set<number>();
  for (let j = 0; j < r.k; j++) {
    for (let t = 0; t < r.tokens; t++) {
      const e = r.experts[t * r.k + j]!;
      if (fill[e]! < cap) fill[e]!++;
      else dropped.add(t * r.k + j);
    }
  }
  return dropped;
}

const root = tempDir('moesaic-gating-');
after(() => removeDir(root));

for (const arch of ['mixtral', 'qwen2_moe'] as const) {
  describe(arch, () => {
    const dir = join(root, arch);
    let dynamic: Float32Array[];
    before(async () => {
      await genModel(dir, arch, { seed: 3, skew: 1.5 });
      dynamic = (await loadModel(dir, { gating: 'dynamic' })).logits(IDS);
    });

    test('every dropless policy equals dynamic gating and the float64 reference', async () => {
      const expected = referenceLogits(loadReference(dir), IDS);
      for (const gating of DISPATCH_POLICY_NAMES.filter((p) => p !== 'static')) {
        const rows = (await loadModel(dir, { gating })).logits(IDS);
        assert.ok(compareRows(rows, dynamic.map((r) => Float64Array.from(r))).maxErr < DROPLESS_TOL, `${gating} vs dynamic`);
        const cmp = compareRows(rows, expected);
        assert.ok(cmp.maxErr < REF_TOL, `${gating} vs reference: ${cmp.maxErr}`);
      }
    });

    test('moesaic logits --gating static with a never-dropping capacity equals dynamic (CLI)', () => {
      for (const args of [['--gating', 'static', '--capacity-factor', '1000'], ['--gating', 'tutel'], ['--gating', 'megablocks']]) {
        const out = JSON.parse(cliOk(['logits', '--model', dir, '--ids', IDS.join(','), ...args])) as { logits: number[][] };
        const cmp = compareRows(out.logits, dynamic.map((r) => Float64Array.from(r)));
        assert.ok(cmp.maxErr < DROPLESS_TOL, `${args.join(' ')}: ${cmp.maxErr}`);
      }
    });

    test('static with a small capacity drops exactly the assignments the capacity rule says', async () => {
      const C = 0.15; // 16 tokens, 8 experts, top-2: 3 slots per expert for 32 assignments, must overflow
      const seen: Array<{ routing: Routing; plan: DispatchPlan }> = [];
      const model = await loadModel(dir, { gating: 'static', capacityFactor: C });
      const rows = model.logits(IDS, (_layer, routing, plan) => seen.push({ routing, plan }));
      assert.ok(seen.length > 0);
      let total = 0;
      for (const { routing, plan } of seen) {
        const want = expectedDrops(routing, plan.numExperts, C);
        const got = new Set<number>();
        plan.slotOf.forEach((s, a) => s < 0 && got.add(a));
        assert.deepEqual([...got].sort((a, b) => a - b), [...want].sort((a, b) => a - b));
        assert.equal(plan.dropped, want.size);
        total += want.size;
      }
      assert.ok(total > 0, 'the case must actually overflow');
      const cmp = compareRows(rows, dynamic.map((r) => Float64Array.from(r)));
      assert.ok(cmp.maxErr > 1e-3, `dropping ${total} assignments must change the logits`);
    });
  });
}

describe('moesaic bench gating', () => {
  interface Row { policy: string; batch: number; tokens_per_s: number | null; peak_activation_bytes: number; dropped: number; padded: number }
  const check = (rows: Row[], batches: number[]) => {
    assert.equal(rows.length, batches.length * DISPATCH_POLICY_NAMES.length, 'one result per policy and batch');
    for (const r of rows) {
      assert.ok(DISPATCH_POLICY_NAMES.includes(r.policy) && batches.includes(r.batch));
      assert.ok(r.tokens_per_s! > 0 && r.peak_activation_bytes > 0 && r.padded >= 0);
      if (r.policy !== 'static') assert.equal(r.dropped, 0, r.policy);
      if (r.policy === 'dynamic' || r.policy === 'fastmoe') assert.equal(r.padded, 0, r.policy);
    }
  };

  test('--model --json: every policy at every batch, dropless ones drop nothing', async () => {
    const dir = join(root, 'bench-model');
    await genModel(dir, 'mixtral', { seed: 4 });
    const out = JSON.parse(cliOk(['bench', 'gating', '--model', dir, '--batches', '8,24', '--repeat', '1', '--capacity-factor', '0.1', '--json'])) as { results: Row[] };
    check(out.results, [8, 24]);
    assert.ok(out.results.some((r) => r.policy === 'static' && r.dropped > 0), 'C = 0.1 must drop on 24 tokens');
  });

  test('synthetic layer: table on stdout, JSON and SVG files written', () => {
    const json = join(root, 'bench.json');
    const svg = join(root, 'bench.svg');
    const text = cliOk(['bench', 'gating', '--experts', '8', '--hidden', '16', '--ffn', '24', '--top-k', '2', '--skew', '1', '--batches', '16,32', '--repeat', '1', '--out', json, '--svg', svg]);
    assert.match(text, /\| batch \| policy/);
    assert.match(text, /dynamic \/ static throughput by batch: 16: [\d.]+x, 32: [\d.]+x/);
    const out = JSON.parse(readFileSync(json, 'utf8')) as { results: Row[]; dynamic_over_static: { batch: number }[] };
    check(out.results, [16, 32]);
    assert.deepEqual(out.dynamic_over_static.map((r) => r.batch), [16, 32]);
    assert.ok(existsSync(svg) && /<svg[\s\S]*dynamic[\s\S]*<\/svg>/.test(readFileSync(svg, 'utf8')));
  });
});
