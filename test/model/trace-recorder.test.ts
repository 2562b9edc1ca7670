// A recorded routing trace holds the experts the router chose: each record's ids and weights are checked
// against an independent top-k of the router logits, computed by the float64 reference implementation
// (test/reference/hf-reference.ts) from the checkpoint's own router weights and each layer's input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../src/index.js';
import { TraceRecorder } from '../../src/trace/recorder.js';
import { readTrace, type TraceRecord } from '../../src/trace/format.js';
import { loadReference, type RefArch, type RefRoute, referenceLogits } from '../reference/hf-reference.js';
import { writeRandomCheckpoint } from '../reference/checkpoint-tools.js';
import { removeDir, tempDir } from '../reference/harness.js';

/** Probability gaps below this are near-ties that float32 may order differently from float64. */
const MIN_MARGIN = 1e-4;

for (const arch of ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as RefArch[]) {
  test(`${arch}: a recorded trace's experts and weights are the reference top-k of the router logits`, async () => {
    const dir = tempDir('moesaic-trace-rec-');
    try {
      writeRandomCheckpoint(join(dir, 'ckpt'), arch, { seed: 5 });
      const model = await loadModel(join(dir, 'ckpt'), { backend: 'ref' });
      const path = join(dir, 't.jsonl');
      const recorder = new TraceRecorder(path, arch, model.config);
      const prompt = [3, 17, 1, 29, 8, 12];
      const generated: number[] = [];
      for await (const tok of model.generate(prompt, { maxTokens: 4, temperature: 0, stopAtEos: false, observer: recorder.observer })) generated.push(tok.id);
      await recorder.close();
      const { header, records } = await readTrace(path);
      const recs: TraceRecord[] = [];
      for await (const r of records) recs.push(r);

      // the forward passes ran the prompt (step 0), then each generated token but the last (steps 1..3)
      const fed = [...prompt, ...generated.slice(0, -1)];
      const routes = new Map<number, RefRoute[]>();
      referenceLogits(loadReference(join(dir, 'ckpt')), fed, routes);
      assert.deepEqual(header.moe_layers, [...routes.keys()].sort((a, b) => a - b));
      assert.equal(recs.length, 4 * header.moe_layers.length);
      let checked = 0;
      let skipped = 0;
      for (const rec of recs) {
        const first = rec.step === 0 ? 0 : prompt.length + rec.step - 1;
        assert.equal(rec.experts.length, rec.step === 0 ? prompt.length : 1, `step ${rec.step} tokens`);
        rec.experts.forEach((ids, t) => {
          const ref = routes.get(rec.layer)![first + t]!;
          if (ref.margin < MIN_MARGIN) {
            skipped++;
            return;
          }
          const where = `step ${rec.step}, layer ${rec.layer}, token ${t}`;
          assert.deepEqual([...ids].sort((a, b) => a - b), [...ref.experts].sort((a, b) => a - b), where);
          ids.forEach((e, j) => {
            const w = ref.weights[ref.experts.indexOf(e)]!;
            assert.ok(Math.abs(rec.weights![t]![j]! - w) < 1e-4, `${where}: weight of expert ${e}: ${rec.weights![t]![j]} vs ${w}`);
          });
          checked++;
        });
      }
      assert.ok(checked >= 0.9 * (checked + skipped) && checked > 0, `${checked} tokens checked, ${skipped} near-ties skipped`);
    } finally {
      removeDir(dir);
    }
  });
}
