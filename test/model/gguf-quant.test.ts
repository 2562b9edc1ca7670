// Quantized GGUF end to end: a gen-model small Mixtral (dimensions multiples of 256, 8 experts) exported
// as Q4_K_M: every tensor has the type llama.cpp's quantizer would give it, the file
// runs on the native quantized kernels close to the reference backend on the same blocks and to the f32
// folder, `--quantize` at load gives exactly the file's logits, and llama.cpp itself (when it can run
// here) reads the file with the same logits and greedy ids (llama-crosscheck.test.ts runs every mix).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateModel } from '../../src/gen/gen-model.js';
import { exportGguf } from '../../src/model/gguf/export.js';
import { ggmlTypeName } from '../../src/model/gguf/format.js';
import { parseGguf } from '../../src/model/gguf/reader.js';
import { loadModel } from '../../src/model/model.js';
import { fileMapper } from '../../src/tensor/backends.js';
import { nativeAvailable } from '../../src/tensor/native.js';
import { agreement, divergenceMargin, findLlamaCpp, findLlamaQuantize, LLAMA_LOGIT_TOLERANCE, LLAMA_MEDIAN_TOLERANCE, runLlamaCpp } from '../helpers/llama-cpp.js';
import { removeDir, rowRelErr, tempDir } from '../reference/harness.js';

const IDS = [1, 17, 300, 42, 511, 7, 7, 2];
const root = tempDir('moesaic-gguf-quant-');
const dir = join(root, 'mixtral-small');
const q4km = join(root, 'mixtral-small.q4_k_m.gguf');
after(() => removeDir(root));

function maxRelErr(a: Float32Array[], b: Float32Array[]): number {
  return Math.max(...a.map((row, i) => rowRelErr(row, b[i]!)));
}

describe('quantized GGUF (gen-model small mixtral)', { skip: nativeAvailable() ? false : 'native addon not built' }, () => {
  let folder: Float32Array[];
  before(async () => {
    await generateModel({ arch: 'mixtral', size: 'small', out: dir, seed: 5, dtype: 'f32' });
    exportGguf({ model: dir, out: q4km, type: 'q4_k_m', mapFile: await fileMapper() });
    folder = (await loadModel(dir)).logits(IDS);
  });

  test("Q4_K_M: every tensor has llama.cpp's type for the mix", async () => {
    const file = parseGguf((await fileMapper())(q4km), q4km);
    // 4 layers: use_more_bits holds for layers 2 and 3; 8 experts: attn_k/v Q8_0, attn_output Q5_K
    const want = (name: string): string => {
      if (name === 'output.weight') return 'Q6_K';
      if (/norm|ffn_gate_inp/.test(name)) return 'F32';
      if (/attn_[kv]\.weight/.test(name)) return 'Q8_0';
      if (name.includes('attn_output')) return 'Q5_K';
      if (/blk\.[23]\.ffn_down/.test(name)) return 'Q6_K';
      return 'Q4_K';
    };
    assert.ok(file.tensors.size > 20);
    for (const [name, info] of file.tensors) assert.equal(ggmlTypeName(info.type), want(name), name);
  });

  test('the native quantized kernels agree with the reference backend on the same file', async () => {
    const cpu = (await loadModel(q4km)).logits(IDS);
    const ref = (await loadModel(q4km, { backend: 'ref' })).logits(IDS);
    // the kernels round activations to 8 bits per 32 values: measured 3e-3 here
    const err = maxRelErr(cpu, ref);
    console.log(`# q4_k_m cpu vs ref: ${err.toExponential(2)}`);
    assert.ok(err < 2e-2, `cpu vs ref on Q4_K_M: ${err}`);
  });

  test('the Q4_K_M file stays close to the f32 folder', async () => {
    // a sanity bound: Q4_K's error flips near-tied expert choices in this random model (measured 0.14;
    // a wrong scale, layout or permutation gives errors of order 1)
    const err = maxRelErr((await loadModel(q4km)).logits(IDS), folder);
    console.log(`# q4_k_m vs f32 folder: ${err.toExponential(2)}`);
    assert.ok(err < 0.3, `Q4_K_M vs f32 folder: ${err}`);
  });

  test('--quantize q4_k_m at load gives exactly the exported file\'s logits', async () => {
    const mem = (await loadModel(dir, { quantize: 'q4_k_m' })).logits(IDS);
    const file = (await loadModel(q4km)).logits(IDS);
    assert.equal(maxRelErr(mem, file), 0);
  });

  test('--quantize refuses weights that are already quantized (no second rounding), and is a no-op for the same mix', async () => {
    await assert.rejects(async () => loadModel(q4km, { quantize: 'q4_0' }), {
      code: 'E_BAD_OPTION',
      message: /--quantize q4_0: .* is already quantized \(tensor '.+' is q4_k, the mix wants q4_0\)/,
    });
    const same = (await loadModel(q4km, { quantize: 'q4_k_m' })).logits(IDS);
    assert.equal(maxRelErr(same, (await loadModel(q4km)).logits(IDS)), 0);
  });

  test('the expert cache serves quantized experts as their blocks: logits equal to the mapped file', async () => {
    const mapped = (await loadModel(q4km)).logits(IDS);
    // 2 of 8 experts per layer resident: most experts are read from the file into slots as byte ranges
    const cached = (await loadModel(q4km, { expertCacheSlots: 2 })).logits(IDS);
    assert.equal(maxRelErr(cached, mapped), 0);
    // weights quantized in memory are no file's bytes: the cache refuses them, saying what to do
    await assert.rejects(async () => (await loadModel(dir, { quantize: 'q4_k_m', expertCacheSlots: 2 })).logits(IDS), {
      code: 'E_BAD_OPTION',
      message: /quantized in memory by --quantize.*export-gguf --type/,
    });
  });

  // One llama.cpp run (it is slow on a busy machine): on llama-quantize's file when llama.cpp's tools are
  // built, which is then shown to be moesaic's export byte for byte, else on moesaic's export.
  test('llama.cpp agrees with moesaic on the Q4_K_M file (logits at every prompt position, greedy ids up to a near-tie), and llama-quantize writes the same file', async (t) => {
    const llama = findLlamaCpp();
    if (typeof llama === 'string') return t.skip(llama);
    const quantizer = findLlamaQuantize(llama);
    const theirsFile = existsSync(quantizer) ? join(root, 'mixtral-small.llama-quantize.q4_k_m.gguf') : q4km;
    if (theirsFile !== q4km) await compareWithLlamaQuantize(quantizer, theirsFile);
    else console.log(`# ${quantizer}: checking moesaic's own export only`);
    const prompt = [1, 17, 300, 42, 511, 7, 7, 2, 1000, 64, 9, 1999];
    const model = await loadModel(theirsFile);
    const ids: number[] = [];
    for await (const tok of model.generate(prompt, { maxTokens: 32, stopAtEos: false })) ids.push(tok.id);
    const run = runLlamaCpp(llama, theirsFile, prompt, 32, model.config.vocabSize, root);
    const { err, median, agree } = agreement({ ids, logits: model.logits(prompt) }, run);
    let note = '';
    if (agree < 32) {
      const prefix = [...prompt, ...ids.slice(0, agree)];
      const margin = divergenceMargin(model.logits(prefix)[prefix.length - 1]!, run.ids[agree]!);
      note = `, then a near-tie (margin ${margin.toExponential(2)})`;
      assert.ok(margin <= LLAMA_MEDIAN_TOLERANCE, `ids part at step ${agree} with a margin of ${margin.toExponential(2)}, not a near-tie`);
    }
    console.log(`# ${theirsFile === q4km ? 'moesaic' : 'llama-quantize'} q4_k_m, moesaic vs llama.cpp: logits max ${err.toExponential(2)} median ${median.toExponential(2)}, greedy ids agree ${agree}/32${note}`);
    assert.ok(err <= LLAMA_LOGIT_TOLERANCE && median <= LLAMA_MEDIAN_TOLERANCE, `logits differ by ${err.toExponential(2)} (median ${median.toExponential(2)})`);
  });
});

/** llama-quantize's Q4_K_M of the same f32 weights: the same tensor types (the mix rules) and the same
 *  blocks (the quantizers: ggml's reference searches, no importance matrix) as moesaic's export. */
async function compareWithLlamaQuantize(quantizer: string, theirsFile: string): Promise<void> {
  const f32 = join(root, 'mixtral-small.f32.gguf');
  exportGguf({ model: dir, out: f32, type: 'f32', mapFile: await fileMapper() });
  const r = spawnSync(quantizer, [f32, theirsFile, 'Q4_K_M', '2'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `llama-quantize failed: ${r.stderr}`);
  const mapFile = await fileMapper();
  const theirs = parseGguf(mapFile(theirsFile), theirsFile);
  const ours = parseGguf(mapFile(q4km), q4km);
  assert.deepEqual([...theirs.tensors.keys()].sort(), [...ours.tensors.keys()].sort());
  // the same type for every tensor (the mix rules) and the same blocks (the quantizers: ggml's
  // reference searches, without an importance matrix)
  const a = new Uint8Array(mapFile(theirsFile));
  const b = new Uint8Array(mapFile(q4km));
  for (const [name, info] of theirs.tensors) {
    const mine = ours.tensors.get(name)!;
    assert.equal(ggmlTypeName(mine.type), ggmlTypeName(info.type), `${name}: moesaic's mix vs llama-quantize`);
    const x = a.subarray(info.offset, info.offset + info.bytes);
    const y = b.subarray(mine.offset, mine.offset + mine.bytes);
    assert.ok(x.length === y.length && x.every((v, i) => v === y[i]), `${name}: moesaic's ${ggmlTypeName(mine.type)} blocks differ from llama-quantize's`);
  }
}
