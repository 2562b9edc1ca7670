import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from '../errors.js';

/**
 * Running one measurement in a fresh Node process: the job goes in as JSON on stdin, the result
 * comes back as the last JSON line of stdout. The child's stderr (progress, engine logs) is kept, and
 * echoed live when MOESAIC_BENCH_VERBOSE is set, so that a child that exits non-zero or prints no
 * result fails the bench with the tail of what it said.
 */
export async function runChild<T>(script: URL, job: unknown, timeoutMs: number): Promise<T> {
  const child = spawn(process.execPath, [fileURLToPath(script)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (process.env.MOESAIC_BENCH_VERBOSE) process.stderr.write(d);
  });
  child.stdin.end(JSON.stringify(job));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  const last = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    const name = basename(fileURLToPath(script));
    fail('E_NATIVE', `bench child ${name} ${code === null ? 'timed out or was killed' : `exited with ${code}`}: ${stderr.trim().split('\n').slice(-8).join('\n') || '(no output)'}`);
  }
  return JSON.parse(last) as T;
}

/** Read the whole of stdin (the job) in a child. */
export async function readJob<T>(): Promise<T> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return JSON.parse(text) as T;
}

/**
 * This process's peak resident set in bytes: VmHWM from /proc (Linux), else the kernel's maxRSS.
 * Memory-mapped weight pages that were touched count, as they occupy RAM while the model runs.
 */
export function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Print a child's result as the last stdout line and exit (engines may keep native handles that would
 * hold the process open); errors go to stderr with exit code 1.
 */
export async function childMain<T>(work: () => Promise<T>): Promise<void> {
  try {
    const result = await work();
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stderr.write(`${err.code ? `[${err.code}] ` : ''}${err.message ?? String(e)}\n`, () => process.exit(1));
  }
}
