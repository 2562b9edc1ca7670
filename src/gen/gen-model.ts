import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fail, MoesaicError } from '../errors.js';
import { OutputDir } from '../io/output-dir.js';
import { ARCHS, configJson, FLOAT_FIELDS, isArch, isSize, modelDims, SIZES } from './configs.js';
import type { Arch, Size } from './configs.js';
import { openSource } from './init.js';
import { pythonJson } from './python-json.js';
import { writeWeights } from './safetensors-writer.js';
import type { TensorToWrite } from './safetensors-writer.js';
import { tensorPlan } from './tensors.js';
import { tokenizerFiles } from './tokenizer-files.js';

/**
 * `gen-model`: a seeded synthetic MoE checkpoint in the exact Hugging Face layout (config.json,
 * model.safetensors or shards + index, tokenizer.json, tokenizer_config.json, generation_config.json).
 * Nothing can be downloaded where moesaic is tested, so every test, benchmark and the demo runs on these.
 */
export interface GenModelOptions {
  arch: Arch;
  size: Size;
  out: string;
  seed?: number;
  dtype?: 'f32' | 'bf16';
  /** Routing skew >= 0; 0 gives roughly uniform expert popularity (model in init.ts). */
  skew?: number;
  /** Largest shard in MB (10^6 bytes) before the weights are split into numbered shards. */
  shardMb?: number;
  /** Number of routed experts per MoE layer instead of the size's (e.g. 32+ for expert-cache tests). */
  experts?: number;
  /** Number of decoder layers instead of the size's. */
  layers?: number;
  onProgress?: (msg: string) => void;
  /** How errors name the output folder (default `--out DIR`; the demo names its cache folder). */
  outName?: string;
}

/**
 * Marks a directory as gen-model output: generating into an existing non-empty directory is refused
 * unless it holds this file, so a mistyped --out never replaces someone's real checkpoint. It also
 * records the options, which (with the moesaic version) reproduce the directory byte for byte.
 */
export const MARKER_FILE = 'moesaic-gen.json';

export const DEFAULT_SHARD_MB = 2000;

export async function generateModel(opts: GenModelOptions): Promise<void> {
  const o = validate(opts);
  const d = modelDims(o.arch, o.size, { experts: opts.experts, layers: opts.layers });
  const target = resolve(o.out);
  const name = opts.outName ?? `--out ${o.out}`;
  checkTarget(target, name);
  // built in a temporary folder beside --out (a symlink is followed and kept), moved in when complete
  const out = new OutputDir(target, name);
  const tmp = out.tmp;
  try {
    const json = (name: string, value: unknown) => writeFileSync(join(tmp, name), JSON.stringify(value, null, 2) + '\n');
    writeFileSync(join(tmp, 'config.json'), pythonJson(configJson(d, o.dtype), new Set(FLOAT_FIELDS[o.arch])) + '\n');
    const tok = tokenizerFiles(d.vocab, d.maxPos);
    json('tokenizer.json', tok.tokenizer);
    json('tokenizer_config.json', tok.tokenizerConfig);
    json('generation_config.json', tok.generationConfig);

    const ctx = { seed: o.seed, skew: o.skew, hidden: d.hidden };
    let lastLayer = -1;
    const tensors: TensorToWrite[] = tensorPlan(d).map((t) => ({
      name: t.name,
      shape: t.shape,
      dtype: o.dtype === 'bf16' ? 'BF16' : 'F32',
      open: () => {
        if (t.layer >= 0 && t.layer !== lastLayer) {
          lastLayer = t.layer;
          o.onProgress?.(`generating layer ${t.layer + 1}/${d.layers}`);
        }
        return openSource(t, ctx);
      },
    }));
    await writeWeights(tmp, tensors, o.shardMb * 1e6, o.onProgress);
    json(MARKER_FILE, {
      generator: 'moesaic gen-model',
      arch: o.arch,
      size: o.size,
      seed: o.seed,
      dtype: o.dtype,
      skew: o.skew,
      shard_mb: o.shardMb,
      ...(opts.experts !== undefined ? { experts: d.experts } : {}),
      ...(opts.layers !== undefined ? { layers: d.layers } : {}),
    });
    out.commit();
  } catch (err) {
    out.abort();
    if (err instanceof MoesaicError) throw err;
    fail('E_IO', `writing the model to ${name} failed: ${(err as Error).message}`);
  }
}

type Resolved = Required<Omit<GenModelOptions, 'onProgress' | 'experts' | 'layers' | 'outName'>> & Pick<GenModelOptions, 'onProgress'>;

function validate(opts: GenModelOptions): Resolved {
  const { arch, size, out } = opts;
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? 'f32';
  const skew = opts.skew ?? 0;
  const shardMb = opts.shardMb ?? DEFAULT_SHARD_MB;
  if (!isArch(arch)) fail('E_BAD_OPTION', `--arch must be one of ${ARCHS.join('|')}, got '${String(arch)}'`);
  if (!isSize(size)) fail('E_BAD_OPTION', `--size must be one of ${SIZES.join('|')}, got '${String(size)}'`);
  if (typeof out !== 'string' || out === '') fail('E_BAD_OPTION', '--out must name a directory');
  if (!Number.isSafeInteger(seed) || seed < 0) fail('E_BAD_OPTION', `--seed must be a non-negative integer, got '${seed}'`);
  if (dtype !== 'f32' && dtype !== 'bf16') fail('E_BAD_OPTION', `--dtype must be one of f32|bf16, got '${String(dtype)}'`);
  if (!Number.isFinite(skew) || skew < 0 || skew > 100) fail('E_BAD_OPTION', `--skew must be a number in [0, 100], got '${skew}'`);
  if (!Number.isFinite(shardMb) || shardMb <= 0) fail('E_BAD_OPTION', `--shard-mb must be a number > 0, got '${shardMb}'`);
  return { arch, size, out, seed, dtype, skew, shardMb, onProgress: opts.onProgress };
}

/** --out may be absent, an empty directory or an earlier gen-model output; anything else is refused. */
function checkTarget(target: string, name: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) fail('E_BAD_OPTION', `${name} exists and is not a directory`);
  const entries = readdirSync(target);
  if (entries.length > 0 && !entries.includes(MARKER_FILE)) {
    fail('E_BAD_OPTION', `${name} is a non-empty directory that gen-model did not write (no ${MARKER_FILE}); refusing to replace it`);
  }
}
