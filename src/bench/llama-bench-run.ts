import { spawn } from 'node:child_process';
import { fail } from '../errors.js';
import type { RunResult } from './protocol.js';

/**
 * One measurement of llama.cpp by its own `llama-bench` (built by llama-tools.ts), shaped like a
 * moesaic run so both go through the same figures:
 *   - prefill: `-p P -n 0`, P prompt tokens in one batch from an empty context;
 *   - decode: `-p 0 -n N -d P`, N single-token decode steps after a P-token context (the depth is
 *     filled before the clock starts), the positions moesaic's decode steps run at.
 * Each is one repetition (`-r 1`) after llama-bench's own warm-up run, so repetitions alternate with
 * moesaic's in the parent. llama-bench decodes a fixed token without sampling, so it reports no ids.
 */
export function llamaBenchArgs(model: string, promptTokens: number, genTokens: number, threads: number): { prefill: string[]; decode: string[] } {
  const common = ['-m', model, '-t', String(threads), '-r', '1', '-o', 'json'];
  return {
    prefill: [...common, '-p', String(promptTokens), '-n', '0'],
    decode: [...common, '-p', '0', '-n', String(genTokens), '-d', String(promptTokens)],
  };
}

/** The fields of one llama-bench JSON test record that the bench reads. */
interface LlamaBenchRecord {
  readonly n_prompt: number;
  readonly n_gen: number;
  readonly n_depth?: number;
  readonly n_threads: number;
  readonly avg_ns: number;
  readonly build_commit?: string;
  readonly cpu_info?: string;
  readonly type_k?: string;
}

/** The one record of `text` (llama-bench -o json) with these token counts; its time in ms. */
export function llamaBenchMs(text: string, want: { prompt: number; gen: number; depth: number }): { ms: number; record: LlamaBenchRecord } {
  let records: LlamaBenchRecord[];
  try {
    records = JSON.parse(text) as LlamaBenchRecord[];
  } catch {
    fail('E_NATIVE', `llama-bench printed no JSON: ${text.trim().slice(0, 200) || '(nothing)'}`);
  }
  const r = records.find((x) => x.n_prompt === want.prompt && x.n_gen === want.gen && (x.n_depth ?? 0) === want.depth);
  if (!r || !(r.avg_ns > 0)) {
    fail('E_NATIVE', `llama-bench printed no test with n_prompt ${want.prompt}, n_gen ${want.gen}, n_depth ${want.depth}`);
  }
  return { ms: r.avg_ns / 1e6, record: r };
}

/** Prefill and decode of llama-bench at `threads`, as a RunResult (no ids; peak memory not measured). */
export async function runLlamaBench(exe: string, model: string, promptTokens: number, genTokens: number, threads: number, timeoutMs: number): Promise<RunResult> {
  const args = llamaBenchArgs(model, promptTokens, genTokens, threads);
  const pre = llamaBenchMs(await runTool(exe, args.prefill, timeoutMs), { prompt: promptTokens, gen: 0, depth: 0 });
  const dec = llamaBenchMs(await runTool(exe, args.decode, timeoutMs), { prompt: 0, gen: genTokens, depth: promptTokens });
  return {
    engine: 'llama.cpp',
    prefillMs: pre.ms,
    ttftMs: pre.ms, // llama-bench samples nothing: the prefill is the whole time to the first token
    decodeMs: dec.ms,
    decodeSteps: genTokens,
    genTokens,
    promptTokens,
    peakRssBytes: NaN,
    ids: [],
    build: `llama-bench ${pre.record.build_commit ?? '?'} (${pre.record.cpu_info ?? 'CPU'})`,
    threads: pre.record.n_threads,
  };
}

async function runTool(exe: string, args: string[], timeoutMs: number): Promise<string> {
  const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', resolve);
  });
  clearTimeout(timer);
  if (code !== 0) fail('E_NATIVE', `${exe} ${args.join(' ')} ${code === null ? 'timed out' : `exited with ${code}`}: ${err.trim().split('\n').slice(-4).join(' | ')}`);
  return out;
}
