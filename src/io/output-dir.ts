import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeFolders } from './make-folders.js';
import { fail, MoesaicError } from '../errors.js';
import { outputTarget } from './output-target.js';
import type { Snapshot } from './output-target.js';
import { replaceTarget } from './replace.js';
import { forgetTemporary, registerTemporary, sweepBeside, temporaryPath } from './temporaries.js';

/**
 * A folder output (gen-model's checkpoint) built in a temporary folder beside the destination and
 * moved into place only when complete, like OutputFile for files. A symlinked destination is followed:
 * the folder it points to is replaced and the link kept.
 */
export class OutputDir {
  /** Where to write the folder's files until commit(). */
  readonly tmp: string;
  /** The real destination (a symlink resolved). */
  readonly target: string;
  private readonly before: Snapshot | null;
  private readonly what: string;
  private open = true;

  constructor(path: string, what = path) {
    this.what = what;
    const t = outputTarget(path, 'dir', what);
    if (t.mode === 'direct') fail('E_IO', `${what} is not a folder`);
    this.target = t.path;
    this.before = t.before;
    sweepBeside(this.target);
    this.tmp = temporaryPath(this.target);
    registerTemporary(this.tmp);
    try {
      makeFolders(dirname(this.tmp)); // a library caller's (the demo's cache) parent may not exist yet
      mkdirSync(this.tmp);
    } catch (err) {
      forgetTemporary(this.tmp);
      fail('E_IO', `cannot create a temporary folder beside ${what}: ${(err as Error).message}`);
    }
  }

  commit(): void {
    if (!this.open) fail('E_IO', `${this.what}: commit after close`);
    this.open = false;
    try {
      replaceTarget(this.tmp, this.target, this.before, 'dir', this.what);
    } catch (err) {
      this.abort();
      if (err instanceof MoesaicError) throw err;
      fail('E_IO', `cannot finish ${this.what}: ${(err as Error).message}`);
    }
  }

  abort(): void {
    this.open = false;
    rmSync(this.tmp, { recursive: true, force: true });
    forgetTemporary(this.tmp);
  }
}
