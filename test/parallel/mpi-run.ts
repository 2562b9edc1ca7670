/** Runs test/parallel/ep-worker.js under mpirun for the parallel tests. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mpirunPlan } from '../../src/parallel/launch.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'ep-worker.js');

/** A reason to skip when mpirun cannot run, else undefined. */
export function mpiMissing(): string | undefined {
  const r = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  return r.error ? 'mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)' : undefined;
}

/** `mpirun -np N node ep-worker.js` with the job file; rank 0's JSON line. */
export function runWorker(ranks: number, jobFile: string, extraMpiArgs: string[] = [], timeoutMs = 240_000): unknown {
  const plan = mpirunPlan(ranks, [process.execPath, WORKER], [], { root: process.getuid?.() === 0, env: { ...process.env, MOESAIC_EP_WORKER: jobFile } });
  const r = spawnSync(plan.command, [...extraMpiArgs, ...plan.args], { env: plan.env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`mpirun -np ${ranks} exited ${r.status}: ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
