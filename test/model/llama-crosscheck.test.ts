// Every quantized mix moesaic exports, on every family llama.cpp loads (docs/gguf.md: mixtral as
// llama, qwen3_moe, qwen2_moe small), against llama.cpp itself: logits after the prompt within
// LLAMA_LOGIT_TOLERANCE and 32 greedy ids equal. Minutes of work, so it runs only with
// MOESAIC_CROSSCHECK=all; the default suite checks one Q4_K_M file (gguf-quant.test.ts).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import { exportGguf } from '../../src/model/gguf/export.js';
import { QUANT_MIXES } from '../../src/model/gguf/quant-mix.js';
import { loadModel } from '../../src/model/model.js';
import { fileMapper } from '../../src/tensor/backends.js';
import { agreement, divergenceMargin, findLlamaCpp, LLAMA_LOGIT_TOLERANCE, LLAMA_MEDIAN_TOLERANCE, runLlamaCpp } from '../helpers/llama-cpp.js';
import { removeDir, tempDir } from '../reference/harness.js';

const PROMPT = [1, 17, 300, 42, 511, 7, 7, 2, 1000, 64, 9, 1999];
const GEN = 32;
const enabled = process.env['MOESAIC_CROSSCHECK'] === 'all';
const llama = enabled ? findLlamaCpp() : 'set MOESAIC_CROSSCHECK=all to run every mix and family against llama.cpp';
const root = tempDir('moesaic-llama-xcheck-');
after(() => removeDir(root));

for (const arch of ['mixtral', 'qwen3_moe', 'qwen2_moe'] as const) {
  describe(`llama.cpp on moesaic's quantized ${arch} exports`, { skip: typeof llama === 'string' ? llama : false }, () => {
    for (const mix of QUANT_MIXES) {
      test(`${mix}: logits within tolerance, ${GEN} greedy ids equal up to a near-tie`, async () => {
        const dir = join(root, arch);
        await generateModel({ arch, size: 'small', out: dir, seed: 9, dtype: 'bf16' });
        const file = join(root, `${arch}.${mix}.gguf`);
        exportGguf({ model: dir, out: file, type: mix, mapFile: await fileMapper() });
        const model = await loadModel(file);
        const ids: number[] = [];
        for await (const t of model.generate(PROMPT, { maxTokens: GEN, stopAtEos: false })) ids.push(t.id);
        const ours = { ids, logits: model.logits(PROMPT) };
        const theirs = runLlamaCpp(llama as Exclude<typeof llama, string>, file, PROMPT, GEN, model.config.vocabSize, root);
        const { err, median, agree } = agreement(ours, theirs);
        assert.ok(err <= LLAMA_LOGIT_TOLERANCE, `${arch} ${mix}: logits differ by ${err.toExponential(2)} of their range at one position`);
        assert.ok(median <= LLAMA_MEDIAN_TOLERANCE, `${arch} ${mix}: logits differ by ${median.toExponential(2)} at the median position`);
        if (agree === GEN) {
          console.log(`# ${arch} ${mix}: logits max ${err.toExponential(2)} median ${median.toExponential(2)}, greedy ids agree ${GEN}/${GEN}`);
          return;
        }
        const prefix = [...PROMPT, ...ids.slice(0, agree)];
        const margin = divergenceMargin(model.logits(prefix)[prefix.length - 1]!, theirs.ids[agree]!);
        console.log(`# ${arch} ${mix}: logits max ${err.toExponential(2)} median ${median.toExponential(2)}, greedy ids agree ${agree}/${GEN}, then a near-tie (margin ${margin.toExponential(2)})`);
        assert.ok(margin <= LLAMA_MEDIAN_TOLERANCE, `${arch} ${mix}: ids part at step ${agree} with a margin of ${margin.toExponential(2)}, not a near-tie`);
      });
    }
  });
}
