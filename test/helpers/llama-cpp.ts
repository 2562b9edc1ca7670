import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNodeLlamaCpp } from '../../src/bench/llama-install.js';
import { cacheDir } from '../../src/cli/cache-dir.js';
import { nativeAvailable } from '../../src/tensor/native.js';
import { rowRelErr } from '../reference/harness.js';

/**
 * llama.cpp (node-llama-cpp's prebuilt CPU binary, installed into the moesaic cache on first use as
 * `bench generate --vs llama.cpp` does) for cross-checks: its raw logits after a prompt and its greedy
 * continuation, from a child process (llama-cpp-worker.ts).
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

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'llama-cpp-worker.js');

export function runLlamaCpp(l: LlamaCpp, model: string, prompt: readonly number[], genTokens: number, vocab: number, scratch: string): { ids: number[]; logits: Float32Array } {
  const jobFile = join(scratch, 'llama-job.json');
  writeFileSync(jobFile, JSON.stringify({ entry: l.entry, model, prompt, genTokens, vocab, threads: 2 }));
  const r = spawnSync(process.execPath, [WORKER, jobFile], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `llama.cpp worker failed on ${model}: ${r.stderr || String(r.error)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ids: number[]; logits: (number | null)[] };
  out.logits.forEach((v, i) => assert.ok(typeof v === 'number' && Number.isFinite(v), `llama.cpp gave no logit for token ${i}`));
  return { ids: out.ids, logits: Float32Array.from(out.logits as number[]) };
}

/**
 * Agreement of moesaic and llama.cpp on one file: max |a - b| / max |b| of the logits after the prompt
 * and how many greedy ids agree from the start. Tolerance: both engines round the activations of every
 * quantized product to 8 bits per block (moesaic per 32 values, llama.cpp per 256 for K-quants) and sum
 * in different orders: measured ~1e-2 of the logits' range; a wrong block layout, scale or tensor type
 * gives differences of order 1 and different ids.
 */
export const LLAMA_LOGIT_TOLERANCE = 3e-2;

export function agreement(ours: { ids: readonly number[]; logits: Float32Array }, theirs: { ids: readonly number[]; logits: Float32Array }): { err: number; agree: number } {
  let agree = 0;
  while (agree < ours.ids.length && ours.ids[agree] === theirs.ids[agree]) agree++;
  return { err: rowRelErr(ours.logits, theirs.logits), agree };
}
