/**
 * `--ranks N` restarts the command under mpirun; a signal sent to that launcher alone (`timeout`,
 * `kill PID`, a supervisor) must stop mpirun and the ranks too, not leave them running as orphans.
 * The ranks block on a FIFO given as --prompts-file, so they are surely still running when the
 * launcher is signalled.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mpiAvailable } from '../../src/parallel/mpi-communicator.js';
import { BIN, genModel, removeDir, tempDir } from '../reference/harness.js';
import { mpiMissing } from './mpi-run.js';

const skip = mpiAvailable() ? mpiMissing() : 'the MPI addon is not built (no mpicc at npm install)';
const MARKER = `MOESAIC_LAUNCH_TEST=${process.pid}-${Date.now()}`;

/** Processes whose environment carries this test's marker (the launcher, mpirun, the ranks). */
function marked(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(MARKER)) pids.push(Number(name));
    } catch { /* gone or not ours */ }
  }
  return pids;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (cond()) return;
    await sleep(100);
  }
  assert.fail(`gave up waiting: ${what}`);
}

let dir: string;
before(async () => {
  if (skip) return;
  dir = tempDir();
  await genModel(join(dir, 'm'), 'mixtral');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
});
after(() => {
  if (skip) return;
  for (const pid of marked()) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  removeDir(dir);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} to the --ranks launcher stops mpirun and its ranks`, { skip }, async () => {
    const [k, v] = MARKER.split('=') as [string, string];
    const launcher = spawn(process.execPath, [BIN, 'trace', '--model', join(dir, 'm'), '--prompts-file', join(dir, 'fifo'),
      '--out', join(dir, `t-${signal}.jsonl`), '--ranks', '2'], { env: { ...process.env, [k]: v }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
    await until(() => marked().length >= 4, 'the launcher, mpirun and 2 ranks to start');
    launcher.kill(signal);
    const code = await exited;
    assert.notEqual(code, 0, 'an interrupted run exits non-zero');
    await until(() => marked().length === 0, 'mpirun and the ranks to exit after the launcher');
  });
}
