/**
 * Helpers for whole-model tests: run the moesaic CLI as a child process, generate synthetic
 * checkpoints into temp dirs, load the engine library, and compare logits rows by relative error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Arch } from '../../src/gen/configs.js';
import { generateModel } from '../../src/gen/gen-model.js';

/** Repository root (this file runs as dist/test/reference/harness.js). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = join(ROOT, 'bin', 'moesaic.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; the generous timeout only stops a hang (the suite must pass at load average 8). */
export function cli(args: string[], timeoutMs = 180_000, env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 << 20, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and fails with its stderr when it exits non-zero. */
export function cliOk(args: string[]): string {
  const r = cli(args);
  if (r.code !== 0) throw new Error(`moesaic ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export function tempDir(tag = 'moesaic-test-'): string {
  return mkdtempSync(join(tmpdir(), tag));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface GenOpts {
  seed?: number;
  dtype?: 'f32' | 'bf16';
  skew?: number;
  shardMb?: number;
  experts?: number;
  layers?: number;
}

/**
 * A `gen-model --size tiny` checkpoint in `out`, made in-process (the gen-model CLI has its own test;
 * spawning it once per checkpoint cost the suite a process start each).
 */
export async function genModel(out: string, arch: Arch, o: GenOpts = {}): Promise<string> {
  await generateModel({ arch, size: 'tiny', out, ...o });
  return out;
}

/** The slice of the library API these tests use (kept local so the tests compile without it). */
export interface EngineModel {
  logits(ids: number[]): Float32Array[] | Promise<Float32Array[]>;
  close?(): void | Promise<void>;
  dispose?(): void | Promise<void>;
}
export interface EngineLib {
  loadModel(dir: string, options?: { backend?: 'ref' | 'cpu' }): Promise<EngineModel>;
}

export async function engineLib(): Promise<EngineLib> {
  return (await import(pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href)) as EngineLib;
}

/** Logits through the library, closing the model afterwards when it can be closed. */
export async function libLogits(dir: string, ids: number[], backend: 'ref' | 'cpu'): Promise<Float32Array[]> {
  const lib = await engineLib();
  const m = await lib.loadModel(dir, { backend });
  try {
    return await m.logits(ids);
  } finally {
    await (m.close ?? m.dispose)?.call(m);
  }
}

/** Logits through `moesaic logits`. */
export function cliLogits(dir: string, ids: number[], backend?: 'ref' | 'cpu', extra: string[] = []): number[][] {
  const args = ['logits', '--model', dir, '--ids', ids.join(','), ...extra];
  if (backend) args.push('--backend', backend);
  const out = JSON.parse(cliOk(args)) as { logits: number[][] };
  return out.logits;
}

/** max_j |a_j - b_j| / max_j |b_j| for one row. */
export function rowRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const x = Number(a[i]);
    if (!Number.isFinite(x)) return Infinity;
    d = Math.max(d, Math.abs(x - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

export interface Compare {
  maxErr: number; // worst row
  worstRow: number;
  worstCol: number; // the column with the largest absolute difference in the worst row
  engineAt: number;
  refAt: number;
}

/** Compares all rows; returns the worst relative error and where it is. */
export function compareRows(engine: ArrayLike<ArrayLike<number>>, ref: Float64Array[]): Compare {
  if (engine.length !== ref.length) throw new Error(`engine gave ${engine.length} rows, reference ${ref.length}`);
  let worst: Compare = { maxErr: -1, worstRow: -1, worstCol: -1, engineAt: NaN, refAt: NaN };
  for (let t = 0; t < ref.length; t++) {
    const e = rowRelErr(engine[t], ref[t]);
    if (e > worst.maxErr) {
      let col = 0;
      for (let j = 0; j < ref[t].length; j++) {
        if (Math.abs(Number(engine[t][j]) - ref[t][j]) > Math.abs(Number(engine[t][col]) - ref[t][col])) col = j;
      }
      worst = { maxErr: e, worstRow: t, worstCol: col, engineAt: Number(engine[t][col]), refAt: ref[t][col] };
    }
  }
  return worst;
}

/** True when stderr looks like it carries a JS stack trace. */
export function hasStackTrace(stderr: string): boolean {
  return /^\s+at .+(:\d+:\d+\)?|\(native\)|<anonymous>)\s*$/m.test(stderr);
}
