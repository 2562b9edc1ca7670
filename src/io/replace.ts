import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../errors.js';
import { sameSnapshot, snapshot } from './output-target.js';
import type { Snapshot } from './output-target.js';
import { forgetTemporary, processAlive, registerTemporary } from './temporaries.js';

/** How long a commit waits for another process's commit of the same output (a rename: microseconds). */
const LOCK_WAIT_MS = 10_000;

/**
 * Puts a finished temporary in place of `target`, unless the target changed since `before` (another
 * process wrote it meanwhile: then this run's output is discarded and the error says so, so the run
 * that reports success is always the one whose data is in place). The check and the rename run under a
 * lock file beside the target, so two commits never interleave. A folder target is moved aside,
 * replaced, and the old one removed only afterwards.
 */
export function replaceTarget(tmp: string, target: string, before: Snapshot | null, kind: 'file' | 'dir', what: string): void {
  const unlock = lock(target, what);
  try {
    if (!sameSnapshot(before, snapshot(target))) {
      fail('E_IO', `${what}: ${target} changed while this run was writing it (another process wrote it?); left it as it is, this run's output is discarded`);
    }
    if (before === null || kind === 'file') {
      renameSync(tmp, target);
    } else {
      const old = `${tmp}.old`;
      registerTemporary(old);
      renameSync(target, old);
      try {
        renameSync(tmp, target);
      } catch (err) {
        renameSync(old, target);
        throw err;
      }
      rmSync(old, { recursive: true, force: true });
      forgetTemporary(old);
    }
    forgetTemporary(tmp);
    syncFolder(dirname(target));
  } finally {
    unlock();
  }
}

function lock(target: string, what: string): () => void {
  const path = join(dirname(target), `.${basename(target)}.moesaic-lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') fail('E_IO', `${what}: cannot create ${path}: ${(e as Error).message}`);
    }
    if (fd !== undefined) {
      registerTemporary(path);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        rmSync(path, { force: true });
        forgetTemporary(path);
      };
    }
    const owner = Number(readOr(path).trim());
    if (Number.isSafeInteger(owner) && owner > 0 && !processAlive(owner)) {
      rmSync(path, { force: true }); // left by a killed process
      continue;
    }
    if (Date.now() > deadline) fail('E_IO', `${what}: ${path} is held by process ${owner} for more than ${LOCK_WAIT_MS / 1000} s; remove it if that process is gone`);
    Atomics.wait(pause, 0, 0, 2); // a synchronous 2 ms sleep: the holder only renames
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Makes the rename durable (best effort: not every file system can fsync a folder). */
function syncFolder(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not supported here
  }
}
