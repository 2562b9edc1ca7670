import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNodeLlamaCpp } from '../../src/bench/llama-install.js';
import { bundleHash, llamaCppBuildPaths } from '../../src/bench/llama-tools.js';
import { cacheDir } from '../../src/cli/cache-dir.js';
import { nativeAvailable } from '../../src/tensor/native.js';
import { rowRelErr } from '../reference/harness.js';

/**
 * llama.cpp (node-llama-cpp's prebuilt CPU binary, installed into the moesaic cache on first use as
 * `bench generate --vs llama.cpp` does) for cross-checks: its raw logits at every position of a prompt
 * and its greedy continuation, from a child process (llama-cpp-worker.ts).
 */
export interface LlamaCpp {
  readonly entry: string;
}

/** The install, or the reason there is none (so the caller can skip with it). */
export function findLlamaCpp(): LlamaCpp | string {
  if (!nativeAvailable()) return 'native addon not built';
  try {
    return { entry: ensureNodeLlamaCpp(cacheDir(), (m) => console.log(`# ${m}`)).entry };
  } catch (e) {
    return `llama.cpp unavailable: node-llama-cpp could not be installed or loaded (${(e as Error).message.split('\n')[0]})`;
  }
}

/**
 * llama.cpp's own `llama-quantize`, if it is already built in the moesaic cache (src/bench/llama-tools.ts
 * builds it from node-llama-cpp's source bundle, ~10 minutes, so a test never starts that build), or
 * why not.
 */
export function findLlamaQuantize(l: LlamaCpp): string {
  let dir = dirname(l.entry);
  for (let i = 0; i < 6 && !existsSync(join(dir, 'llama', 'gitRelease.bundle')); i++) dir = dirname(dir);
  const bundle = join(dir, 'llama', 'gitRelease.bundle');
  if (!existsSync(bundle)) return `node-llama-cpp has no llama.cpp source bundle (${bundle})`;
  const p = llamaCppBuildPaths(cacheDir(), bundleHash(bundle));
  if (!existsSync(p.marker) || !existsSync(p.paths['llama-quantize'])) {
    return `llama-quantize is not built in ${p.dir} (moesaic bench generate --vs llama.cpp builds llama.cpp's tools)`;
  }
  return p.paths['llama-quantize'];
}

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'llama-cpp-worker.js');

export function runLlamaCpp(l: LlamaCpp, model: string, prompt: readonly number[], genTokens: number, vocab: number, scratch: string): { ids: number[]; logits: Float32Array[] } {
  const jobFile = join(scratch, 'llama-job.json');
  // one thread: llama.cpp's threads spin at barriers, which on a busy machine costs more than it gains
  writeFileSync(jobFile, JSON.stringify({ entry: l.entry, model, prompt, genTokens, vocab, threads: 1 }));
  const r = spawnSync(process.execPath, [WORKER, jobFile], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `llama.cpp worker failed on ${model}: ${r.stderr || String(r.error)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ids: number[]; logits: (number | null)[][] };
  out.logits.forEach((row, p) => row.forEach((v, i) => assert.ok(typeof v === 'number' && Number.isFinite(v), `llama.cpp gave no logit for token ${i} at position ${p}`)));
  return { ids: out.ids, logits: out.logits.map((row) => Float32Array.from(row as number[])) };
}

/**
 * Agreement of moesaic and llama.cpp on one file: per prompt position max |a - b| / max |b| of the
 * logits (the worst and the median position), and how many greedy ids agree from the start.
 *
 * Tolerances: both engines round the activations of every quantized product to 8 bits per block
 * (moesaic per 32 values, llama.cpp per 256 for K-quants) and sum in different orders, which moves the
 * logits by ~1e-2 of their range: the median position must stay within LLAMA_MEDIAN_TOLERANCE. At a
 * position where a router's top-k is nearly tied in these random models that can flip an expert
 * (measured up to 9.5e-2 at one of 12 positions), so every position only gets the sanity bound
 * LLAMA_LOGIT_TOLERANCE. A wrong block layout, scale or tensor type gives differences of order 1 at
 * every position.
 */
export const LLAMA_LOGIT_TOLERANCE = 0.2;
export const LLAMA_MEDIAN_TOLERANCE = 2e-2;

export function agreement(ours: { ids: readonly number[]; logits: Float32Array[] }, theirs: { ids: readonly number[]; logits: Float32Array[] }): { err: number; median: number; agree: number } {
  let agree = 0;
  while (agree < ours.ids.length && ours.ids[agree] === theirs.ids[agree]) agree++;
  assert.equal(ours.logits.length, theirs.logits.length);
  const errs = ours.logits.map((row, p) => rowRelErr(row, theirs.logits[p]!)).sort((a, b) => a - b);
  return { err: errs[errs.length - 1]!, median: errs[errs.length >> 1]!, agree };
}

/**
 * Where the greedy ids part, whether that is a near-tie: with both engines on the same prefix, the
 * token llama.cpp chose has a logit (moesaic's) within `tolerance` of the range below moesaic's best,
 * so the engines' logit difference (the quantization's) explains the different choice. Returns the
 * margin as a fraction of the range.
 */
export function divergenceMargin(logits: Float32Array, theirChoice: number): number {
  let best = -Infinity;
  let range = 0;
  for (const v of logits) {
    best = Math.max(best, v);
    range = Math.max(range, Math.abs(v));
  }
  return (best - logits[theirChoice]!) / range;
}
