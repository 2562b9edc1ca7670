import { hostname } from 'node:os';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeFolders } from './make-folders.js';

/**
 * The temporaries of this process: files and folders written beside an output and renamed onto it
 * when complete. They are registered here so that an interrupt (see signals.ts) or an exit before the
 * rename removes them, and recorded in a ledger folder (one small file per temporary) so that any
 * later run can remove those of a process that was killed outright (SIGKILL, out of memory), which no
 * handler can clean. This is process state by nature: one registry per process, never per request.
 */

/** Marks every temporary name, so a sweep never removes anything moesaic did not create. */
const TAG = '.moesaic-tmp-';

interface Entry {
  /** the ledger file that records this temporary, if a ledger is in use */
  ledgerFile?: string;
}

const live = new Map<string, Entry>();
let ledger: string | undefined;
let exitHookInstalled = false;
const listeners = new Set<(count: number) => void>();

/**
 * Record temporaries under `dir` from now on (the CLI uses its cache folder). A folder that cannot be
 * created only disables the ledger: the in-process cleanup still works.
 */
export function useLedger(dir: string): void {
  try {
    makeFolders(dir);
    ledger = dir;
  } catch {
    ledger = undefined;
  }
}

/** A unique name for a temporary beside `target`: `.NAME.moesaic-tmp-PID-RANDOM`. */
export function temporaryPath(target: string): string {
  return join(dirname(target), `.${basename(target)}${TAG}${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Registers `path` (a temporary about to be created) for removal on interrupt or exit. */
export function registerTemporary(path: string): void {
  const entry: Entry = {};
  if (ledger !== undefined) {
    const file = join(ledger, `${process.pid}-${randomBytes(6).toString('hex')}.json`);
    try {
      writeFileSync(file, JSON.stringify({ pid: process.pid, host: hostname(), path }) + '\n', { flag: 'wx' });
      entry.ledgerFile = file;
    } catch {
      // an unwritable ledger only loses the cleanup after a SIGKILL
    }
  }
  live.set(path, entry);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => removeTemporaries());
  }
  notify();
}

/** The temporary was renamed into place (or removed by its owner): forget it. */
export function forgetTemporary(path: string): void {
  const entry = live.get(path);
  if (entry === undefined) return;
  live.delete(path);
  if (entry.ledgerFile !== undefined) rmSync(entry.ledgerFile, { force: true });
  notify();
}

/** Removes every temporary of this process still registered; returns how many there were. */
export function removeTemporaries(): number {
  const paths = [...live.keys()];
  for (const path of paths) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // best effort: a later run's sweep retries
    }
    forgetTemporary(path);
  }
  return paths.length;
}

export function temporaryCount(): number {
  return live.size;
}

/** Called with the number of live temporaries whenever it changes (signals.ts arms its handlers). */
export function onTemporariesChange(listener: (count: number) => void): void {
  listeners.add(listener);
}

function notify(): void {
  for (const l of listeners) l(live.size);
}

/**
 * Removes the temporaries recorded in the ledger by processes of this host that are gone. Only paths
 * whose name carries the temporary tag are removed. Returns the paths removed.
 */
export function sweepStaleTemporaries(): string[] {
  if (ledger === undefined) return [];
  const removed: string[] = [];
  let files: string[];
  try {
    files = readdirSync(ledger);
  } catch {
    return removed;
  }
  const host = hostname();
  for (const f of files) {
    const file = join(ledger, f);
    let rec: { pid?: unknown; host?: unknown; path?: unknown };
    try {
      rec = JSON.parse(readFileSync(file, 'utf8')) as typeof rec;
    } catch {
      continue; // being written right now, or not ours
    }
    if (rec.host !== host || typeof rec.pid !== 'number' || typeof rec.path !== 'string') continue;
    if (processAlive(rec.pid)) continue;
    if (isTemporaryName(rec.path)) {
      rmSync(rec.path, { recursive: true, force: true });
      removed.push(rec.path);
    }
    rmSync(file, { force: true });
  }
  return removed;
}

/**
 * Removes temporaries beside `target` whose process is gone (works without a ledger; a library user
 * writing the same output again cleans up after a killed run).
 */
export function sweepBeside(target: string): void {
  const parent = dirname(target);
  const prefix = `.${basename(target)}${TAG}`;
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const pid = Number(e.slice(prefix.length).split('-')[0]);
    if (Number.isSafeInteger(pid) && pid > 0 && !processAlive(pid)) rmSync(join(parent, e), { recursive: true, force: true });
  }
}

export function isTemporaryName(path: string): boolean {
  return basename(path).includes(TAG);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
