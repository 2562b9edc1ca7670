// GGUF end to end: every architecture, gen-model tiny in f32 and bf16 -> export-gguf as f32,
// bf16 and q8_0 -> loaded back as a moesaic model whose logits, config and tokenizer are compared with
// the Hugging Face folder it came from; truncated files and unsupported tensor types fail clearly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MoesaicError } from '../../src/errors.js';
import { generateModel } from '../../src/gen/gen-model.js';
import { openCheckpoint } from '../../src/model/checkpoint.js';
import type { ModelConfig } from '../../src/model/config.js';
import { exportGguf } from '../../src/model/gguf/export.js';
import type { ExportType } from '../../src/model/gguf/metadata.js';
import { resolveWeights } from '../../src/model/layer-weights.js';
import { KvCache } from '../../src/model/kv-cache.js';
import { loadModel } from '../../src/model/model.js';
import { Transformer } from '../../src/model/transformer.js';
import { dispatchPolicy } from '../../src/moe/policies.js';
import { routerForConfig } from '../../src/moe/routers.js';
import { fileMapper } from '../../src/tensor/backends.js';
import { f32ToBf16, f32ToF16 } from '../../src/tensor/dtype.js';
import { GgmlType } from '../../src/model/gguf/format.js';
import { parseGguf } from '../../src/model/gguf/reader.js';
import type { GgufTensorOut } from '../../src/model/gguf/writer.js';
import { writeGguf } from '../../src/model/gguf/writer.js';
import { toF32 } from '../../src/tensor/weight.js';
import type { TensorStore } from '../../src/model/weight-store.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { cli, removeDir, rowRelErr, tempDir } from '../reference/harness.js';

const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const;
const IDS = [1, 17, 300, 42, 511, 7, 7, 2];

/**
 * Logit bounds, as max |a - b| / max |b| over each row:
 * - same weights and dtype (f32 -> f32, bf16 -> bf16): 1e-5 (in practice identical);
 * - bf16 folder -> f32 GGUF: identical weight values through f32 instead of bf16 kernels: 1e-4;
 * - f32 folder -> bf16 GGUF and any -> q8_0: the weights themselves change (bf16 rounding: relative
 *   2^-9; Q8_0: up to half a step, max|block|/254, plus the bf16 rounding moesaic applies when it
 *   dequantises). Those changes are checked exactly, weight by weight, in `checkWeights`; the logits
 *   only get a sanity bound of 6e-2, because on these tiny random models a perturbation of 1e-3 can
 *   flip a near-tied expert choice: measured 1e-3 to 9e-3 for mixtral, qwen3_moe and olmoe, and 3.7e-2
 *   for qwen2_moe (whose f32 and bf16 gen-model folders differ by as much). A wrong scale, layout,
 *   permutation or expert order gives errors of order 1.
 */
const EXACT = 1e-5;
const WIDENED = 1e-4;
const PERTURBED = 6e-2;

const root = tempDir('moesaic-gguf-');
after(() => removeDir(root));

let mapFile: (path: string) => ArrayBuffer;
let native = true;
const worst: Record<string, number> = {};

before(async () => {
  try {
    mapFile = await fileMapper();
    mapFile(join(root, '..')); // a directory: fails inside mmap if the addon loaded, earlier if it did not
  } catch (e) {
    native = !(e instanceof MoesaicError && e.code === 'E_NATIVE');
  }
  if (!native) {
    // the addon is not built: read files into memory and run the reference backend instead
    mapFile = (p) => {
      const b = readFileSync(p);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    };
    console.log('# gguf: native addon unavailable; using in-memory files and the reference backend');
  }
});

after(() => {
  for (const [k, v] of Object.entries(worst)) console.log(`# gguf worst ${k}: ${v.toExponential(2)}`);
});

/** Logits of every position: loadModel (native kernels) when the addon is built, else the reference path. */
async function logits(path: string): Promise<{ rows: Float32Array[]; config: ModelConfig; tok: ReturnType<typeof openCheckpoint>['tokenizer'] }> {
  if (native) {
    const m = await loadModel(path);
    return { rows: m.logits(IDS), config: m.config, tok: m.tokenizer };
  }
  const { config, tensors, tokenizer } = openCheckpoint(path, mapFile);
  const t = new Transformer(config, resolveWeights(config, tensors), refBackend, routerForConfig(config), dispatchPolicy('dynamic', {}));
  const flat = t.forward(IDS, new KvCache(config.numLayers, IDS.length, config.numKvHeads * config.headDim), { allLogits: true });
  const V = config.vocabSize;
  return { rows: IDS.map((_, i) => flat.subarray(i * V, (i + 1) * V)), config, tok: tokenizer };
}

function maxRelErr(a: Float32Array[], b: Float32Array[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((row, i) => rowRelErr(row, b[i]!)));
}

/**
 * Every tensor of the folder is in the GGUF under its Hugging Face name and shape, with exactly the
 * values the export type implies: norms, biases and routers (and everything in an f32 export) equal to
 * the source widened to f32; bf16 matrices equal to the source rounded to nearest even; Q8_0 matrices
 * within half a quantisation step of their 32-value block (plus bf16 and f16-scale rounding).
 */
function checkWeights(src: TensorStore, gguf: TensorStore, type: ExportType): void {
  for (const name of src.names) {
    const w = src.get(name);
    const g = gguf.get(name, w.shape);
    const x = toF32(w);
    const y = toF32(g);
    if (w.shape.length === 1 || /norm|\.gate\.weight|shared_expert_gate/.test(name)) assert.equal(g.dtype, 'f32', `${name} kept in f32`);
    if (g.dtype === 'f32') {
      assert.deepEqual(y, x, `${name}: f32 values`);
    } else if (type === 'bf16') {
      assert.equal(g.dtype, 'bf16', name);
      for (let i = 0; i < x.length; i++) if (g.data[i] !== f32ToBf16(x[i]!)) assert.fail(`${name}[${i}]: ${y[i]} is not ${x[i]} rounded to bf16`);
    } else {
      assert.equal(type, 'q8_0', `${name}: dtype ${g.dtype} in a ${type} export`);
      for (let b = 0; b < x.length; b += 32) {
        let amax = 0;
        for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
        for (let i = b; i < b + 32; i++) {
          const tol = (amax / 254) * (1 + 2 ** -9) + amax * 2 ** -10 + Math.abs(x[i]!) * 2 ** -8;
          if (!(Math.abs(y[i]! - x[i]!) <= tol)) assert.fail(`${name}[${i}]: Q8_0 gives ${y[i]} for ${x[i]} (block max ${amax})`);
        }
      }
    }
  }
}

function record(key: string, err: number): void {
  worst[key] = Math.max(worst[key] ?? 0, err);
}

/** Every parsed field except the raw JSON; floats stored as f32 in GGUF are compared at f32 precision. */
function comparable(c: ModelConfig): Record<string, unknown> {
  const { raw: _raw, arch, rmsEps, ropeTheta, ...rest } = c;
  return { ...rest, arch: arch.name, rmsEps: Math.fround(rmsEps), ropeTheta: Math.fround(ropeTheta) };
}

for (const arch of ARCHS) {
  describe(arch, () => {
    const dirs = { f32: join(root, `${arch}-f32`), bf16: join(root, `${arch}-bf16`) };
    const folder: Record<string, Awaited<ReturnType<typeof logits>>> = {};
    before(async () => {
      for (const dtype of ['f32', 'bf16'] as const) {
        await generateModel({ arch, size: 'tiny', out: dirs[dtype], seed: 11, dtype });
        folder[dtype] = await logits(dirs[dtype]);
      }
      record(`${arch} bf16 folder vs f32 folder (context)`, maxRelErr(folder.bf16!.rows, folder.f32!.rows));
    });

    for (const dtype of ['f32', 'bf16'] as const) {
      for (const type of ['f32', 'bf16', 'q8_0'] as ExportType[]) {
        test(`${dtype} folder -> ${type} GGUF: logits and config`, async () => {
          const out = join(root, `${arch}-${dtype}-${type}.gguf`);
          const report = exportGguf({ model: dirs[dtype], out, type, mapFile });
          assert.ok(existsSync(out) && !existsSync(`${out}.tmp`));
          assert.equal(report.arch, arch === 'mixtral' ? 'llama' : arch.replace('_', ''));
          const g = await logits(out);
          assert.deepEqual(comparable(g.config), comparable(folder[dtype]!.config));
          checkWeights(openCheckpoint(dirs[dtype], mapFile).tensors, openCheckpoint(out, mapFile).tensors, type);
          const err = maxRelErr(g.rows, folder[dtype]!.rows);
          const bound = type === dtype ? EXACT : type === 'f32' ? WIDENED : PERTURBED;
          record(`${dtype}->${type}`, err);
          assert.ok(err <= bound, `max relative logit error ${err.toExponential(2)} > ${bound}`);
        });
      }
    }

    test('the embedded tokenizer encodes and decodes like tokenizer.json', async () => {
      const out = join(root, `${arch}-f32-f32.gguf`);
      if (!existsSync(out)) exportGguf({ model: dirs.f32, out, type: 'f32', mapFile });
      const a = openCheckpoint(dirs.f32, mapFile).tokenizer!;
      const b = openCheckpoint(out, mapFile).tokenizer!;
      assert.ok(b, 'the GGUF has a tokenizer');
      for (const text of ['The quick brown fox jumps over the lazy dog.', "It's 2026: naïve café — 東京 🦊!", '  spaces\n\tand\ttabs  ', '<|endoftext|> x']) {
        const ids = a.encode(text);
        assert.deepEqual(b.encode(text), ids, JSON.stringify(text));
        assert.equal(b.decode(ids), a.decode(ids));
      }
      const every = Array.from({ length: folder.f32!.config.vocabSize }, (_, i) => i);
      assert.equal(b.decode(every), a.decode(every));
    });
  });
}

/** The export the per-architecture tests write, made here when those did not run (a filtered run). */
async function ensureExport(arch: (typeof ARCHS)[number], dtype: 'f32' | 'bf16', type: ExportType): Promise<string> {
  const dir = join(root, `${arch}-${dtype}`);
  const out = join(root, `${arch}-${dtype}-${type}.gguf`);
  if (!existsSync(dir)) await generateModel({ arch, size: 'tiny', out: dir, seed: 11, dtype });
  if (!existsSync(out)) exportGguf({ model: dir, out, type, mapFile });
  return out;
}

describe('older and other layouts', () => {
  test('float tensors and per-expert slices are views into the mapped file; only llama q/k are copied', async () => {
    for (const arch of ['mixtral', 'qwen3_moe'] as const) {
      const out = await ensureExport(arch, 'bf16', 'bf16');
      let mapped: ArrayBuffer | undefined;
      const store = openCheckpoint(out, (p) => (mapped = mapFile(p))).tensors;
      const expert = arch === 'mixtral' ? 'model.layers.0.block_sparse_moe.experts.3.w1.weight' : 'model.layers.0.mlp.experts.3.gate_proj.weight';
      for (const name of [expert, 'model.embed_tokens.weight', 'model.layers.1.self_attn.v_proj.weight', 'model.norm.weight']) {
        assert.equal(store.get(name).data.buffer, mapped, `${arch} ${name} is a view`);
      }
      const q = store.get('model.layers.0.self_attn.q_proj.weight');
      assert.equal(q.data.buffer === mapped, arch !== 'mixtral', `${arch} q_proj copied only when un-permuted`);
    }
  });

  test('pre-2024 Mixtral layout (one 2-D tensor per expert) stored as F16 reads like the merged one', async () => {
    const dir = join(root, 'mixtral-f32');
    const merged = await ensureExport('mixtral', 'f32', 'f32');
    const buf = mapFile(merged);
    const file = parseGguf(buf, merged);
    const outs: GgufTensorOut[] = [];
    for (const t of file.tensors.values()) {
      const m = /^blk\.(\d+)\.ffn_(gate|up|down)_exps\.weight$/.exec(t.name);
      if (!m) {
        outs.push({ name: t.name, type: t.type, ne: t.ne, produce: (emit) => emit(new Uint8Array(buf, t.offset, t.bytes)) });
        continue;
      }
      const [c, r, E] = t.ne as [number, number, number];
      const f = new Float32Array(buf, t.offset, c * r * E);
      for (let e = 0; e < E; e++) {
        outs.push({
          name: `blk.${m[1]}.ffn_${m[2]}.${e}.weight`,
          type: GgmlType.F16,
          ne: [c, r],
          produce: (emit) => emit(new Uint8Array(Uint16Array.from(f.subarray(e * c * r, (e + 1) * c * r), f32ToF16).buffer)),
        });
      }
    }
    const legacy = join(root, 'legacy.gguf');
    writeGguf(legacy, file.metadata, outs);
    const src = openCheckpoint(dir, mapFile).tensors;
    const got = openCheckpoint(legacy, mapFile).tensors;
    const name = 'model.layers.1.block_sparse_moe.experts.7.w2.weight';
    const w = got.get(name, src.get(name).shape);
    assert.equal(w.dtype, 'f16');
    assert.deepEqual(w.data, Uint16Array.from(toF32(src.get(name)), f32ToF16));
    const err = maxRelErr((await logits(legacy)).rows, (await logits(dir)).rows);
    record('f32 -> legacy f16 experts', err);
    assert.ok(err <= PERTURBED, `max relative logit error ${err.toExponential(2)}`);
  });
});

function expectError(fn: () => unknown, code: string, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MoesaicError, `expected a MoesaicError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message '${e.message}' should mention '${p}'`);
    return true;
  });
}

describe('broken GGUF files', () => {
  let whole: Buffer;
  const src = join(root, 'broken-src');
  before(async () => {
    await generateModel({ arch: 'mixtral', size: 'tiny', out: src, seed: 3, dtype: 'bf16' });
    exportGguf({ model: src, out: join(root, 'ok.gguf'), type: 'q8_0', mapFile });
    whole = readFileSync(join(root, 'ok.gguf'));
  });

  test('a truncated file names the file and says truncated', () => {
    for (const frac of [0.001, 0.3, 0.999]) {
      const p = join(root, `truncated-${frac}.gguf`);
      writeFileSync(p, whole.subarray(0, Math.floor(whole.length * frac)));
      expectError(() => openCheckpoint(p, mapFile), 'E_BAD_CHECKPOINT', p, 'truncated');
    }
  });

  /** The file with the ggml type of `tensor` replaced (its info record: name, n_dims, ne[], type). */
  function withType(tensor: string, type: number): string {
    const b = Buffer.from(whole);
    const at = b.indexOf(Buffer.from(tensor)) + tensor.length;
    b.writeUInt32LE(type, at + 4 + 8 * b.readUInt32LE(at));
    const p = join(root, `type-${type}.gguf`);
    writeFileSync(p, b);
    return p;
  }

  test('a tensor of an unknown type id names the tensor and the id', () => {
    const p = withType('blk.0.attn_q.weight', 99);
    expectError(() => openCheckpoint(p, mapFile), 'E_BAD_CHECKPOINT', p, "'blk.0.attn_q.weight'", 'unknown type id 99');
  });

  test('a quantised type moesaic does not decode names the tensor and the type', () => {
    const p = withType('blk.1.ffn_down_exps.weight', 6);
    expectError(() => openCheckpoint(p, mapFile), 'E_BAD_CHECKPOINT', "'blk.1.ffn_down_exps.weight'", 'Q5_0');
  });

  test('a dense llama (no experts) is refused as unsupported', () => {
    const b = Buffer.from(whole);
    const key = b.indexOf(Buffer.from('llama.expert_count'));
    b.writeUInt32LE(0, key + 'llama.expert_count'.length + 4); // after the u32 value type
    const p = join(root, 'dense.gguf');
    writeFileSync(p, b);
    expectError(() => openCheckpoint(p, mapFile), 'E_UNSUPPORTED_ARCH', 'dense llama');
  });

  test('the CLI exports, and reports a truncated GGUF in one line with a non-zero exit', () => {
    const out = join(root, 'cli.gguf');
    const r = cli(['export-gguf', '--model', src, '--out', out, '--type', 'bf16']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*cli\.gguf \(llama, bf16, \d+ tensors\)/);
    const bad = cli(['logits', '--model', join(root, 'truncated-0.3.gguf'), '--ids', '1,2']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /^moesaic: error \[E_BAD_CHECKPOINT\]: .*truncated-0\.3\.gguf.*truncated/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });
});
