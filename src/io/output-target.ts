import { accessSync, closeSync, constants, lstatSync, openSync, readlinkSync, realpathSync, rmSync, statfsSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fail } from '../errors.js';
import { temporaryPath } from './temporaries.js';

/**
 * Where an output really goes. A regular file or folder (or nothing yet) is replaced atomically: a
 * temporary beside it, renamed over it when complete. A symlink is followed, so the link survives and
 * its target is what gets replaced. A device, FIFO or socket (`/dev/null`, `/dev/stdout` on a pipe) is
 * written directly: renaming a file over it would destroy it.
 */
export type OutputTarget =
  | { mode: 'replace'; path: string; before: Snapshot | null }
  | { mode: 'direct'; path: string };

/** What was at the destination when the run started, to notice another writer before replacing it. */
export interface Snapshot {
  dev: number;
  ino: number;
  mtimeMs: number;
  size: number;
}

export function snapshot(path: string): Snapshot | null {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, size: st.size };
}

export function sameSnapshot(a: Snapshot | null, b: Snapshot | null): boolean {
  if (a === null || b === null) return a === b;
  return a.dev === b.dev && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.size === b.size;
}

/** `kind` is what the output is: a file, or a folder (gen-model). `what` names it in errors (`--out x`). */
export function outputTarget(path: string, kind: 'file' | 'dir', what: string, depth = 0): OutputTarget {
  const abs = resolve(path);
  let st: Stats | undefined;
  try {
    st = statSync(abs); // follows links, /dev/stdout's magic link to a pipe included
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') fail('E_IO', `${what}: ${(e as Error).message}`);
  }
  if (st === undefined) {
    // absent, or a dangling symlink: then its target is created (and the link kept)
    const link = readLink(abs);
    if (link !== undefined) {
      if (depth > 32) fail('E_IO', `${what}: too many levels of symbolic links`);
      return outputTarget(resolve(dirname(abs), link), kind, what, depth + 1);
    }
    return { mode: 'replace', path: resolve(realpathOrSelf(dirname(abs)), basename(abs)), before: null };
  }
  if (kind === 'dir') {
    if (!st.isDirectory()) fail('E_IO', `${what} exists and is not a folder`);
  } else if (st.isDirectory()) {
    fail('E_IO', `${what} is a folder, expected a file`);
  } else if (!st.isFile()) {
    return { mode: 'direct', path: abs }; // a device, FIFO or socket
  }
  const real = realpathSync.native(abs);
  return { mode: 'replace', path: real, before: snapshot(real) };
}

/**
 * Checks before any work that the output can be written: its folder exists and is writable, and the
 * file system is not full. Run by the option parsers, so a bad --out fails in a second, not after
 * minutes of work. (Root passes permission checks; the write itself still fails clearly then.)
 */
export function checkWritable(path: string, kind: 'file' | 'dir', what: string): void {
  const t = outputTarget(path, kind, what);
  if (t.mode === 'direct') {
    try {
      accessSync(t.path, constants.W_OK);
    } catch (e) {
      fail('E_IO', `${what}: cannot write ${t.path}: ${(e as Error).message}`);
    }
    return;
  }
  const folder = dirname(t.path);
  try {
    if (!statSync(folder).isDirectory()) fail('E_IO', `${what}: ${folder} is not a folder`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') fail('E_IO', `${what}: folder ${folder} does not exist`);
    throw e;
  }
  const probe = temporaryPath(t.path); // creating a file is the only test that root cannot pass by right
  try {
    closeSync(openSync(probe, 'wx'));
    rmSync(probe, { force: true });
  } catch (e) {
    fail('E_IO', `${what}: cannot create files in ${folder}: ${(e as Error).message}`);
  }
  const fs = statfsSync(folder);
  if (fs.bavail === 0) fail('E_IO', `${what}: no space left on the file system of ${folder}`);
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
