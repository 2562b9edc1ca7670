import { closeSync, fchmodSync, fsyncSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { fail, MoesaicError } from '../errors.js';
import { outputTarget } from './output-target.js';
import type { OutputTarget } from './output-target.js';
import { replaceTarget } from './replace.js';
import { isClosedPipe } from './signals.js';
import { forgetTemporary, registerTemporary, sweepBeside, temporaryPath } from './temporaries.js';

/**
 * Every file moesaic writes goes through here. A regular file appears only complete: the bytes go to a
 * unique temporary beside it (created with O_EXCL, named with the pid and random bytes, so two runs
 * never share one), are fsynced, and the temporary is renamed over the destination, unless the
 * destination changed meanwhile. A failure (a full disk, an interrupt) removes the temporary and
 * leaves the destination as it was: never a 0-byte or half-written file. Devices and FIFOs are written
 * directly; a symlink is followed and kept.
 */
export class OutputFile {
  readonly path: string;
  private readonly what: string;
  private readonly target: OutputTarget;
  private readonly tmp: string | undefined;
  private fd: number | undefined;

  /** `what` names the output in errors, e.g. `--out trace.jsonl`. */
  constructor(path: string, what = path) {
    this.path = path;
    this.what = what;
    this.target = outputTarget(path, 'file', what);
    const dest = this.target.path;
    if (this.target.mode === 'direct') {
      this.fd = openOrFail(dest, 'w', what);
      return;
    }
    sweepBeside(dest);
    this.tmp = temporaryPath(dest);
    registerTemporary(this.tmp);
    try {
      this.fd = openOrFail(this.tmp, 'wx', what);
    } catch (err) {
      forgetTemporary(this.tmp);
      throw err;
    }
    if (this.target.before !== null) {
      try {
        fchmodSync(this.fd, statSync(dest).mode & 0o7777); // replacing keeps the file's permissions
      } catch {
        // the destination went away meanwhile: the commit notices
      }
    }
  }

  /** Appends bytes (a string as UTF-8). On failure the output is abandoned and an E_IO error thrown. */
  write(data: Uint8Array | string): void {
    if (this.fd === undefined) fail('E_IO', `${this.what}: write after close`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off);
    } catch (err) {
      this.abort();
      if (isClosedPipe(err)) throw err; // a reader that stopped reading: the CLI ends quietly
      fail('E_IO', `cannot write ${this.what}: ${(err as Error).message}`);
    }
  }

  /** Makes the output visible under its name: fsync, close, rename over the destination. */
  commit(): void {
    if (this.fd === undefined) fail('E_IO', `${this.what}: commit after close`);
    const fd = this.fd;
    try {
      if (this.tmp !== undefined) fsyncSync(fd);
      closeSync(fd);
      this.fd = undefined;
      if (this.tmp !== undefined && this.target.mode === 'replace') {
        replaceTarget(this.tmp, this.target.path, this.target.before, 'file', this.what);
      }
    } catch (err) {
      this.abort();
      if (err instanceof MoesaicError) throw err;
      fail('E_IO', `cannot finish ${this.what}: ${(err as Error).message}`);
    }
  }

  /** Drops the unfinished output; the destination is left as it was. Safe to call twice. */
  abort(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = undefined;
    }
    if (this.tmp !== undefined) {
      rmSync(this.tmp, { force: true });
      forgetTemporary(this.tmp);
    }
  }
}

/** Writes a whole file at once (reports, charts, JSON), atomically as above. */
export function writeOutputFile(path: string, data: Uint8Array | string, what = path): void {
  const out = new OutputFile(path, what);
  out.write(data);
  out.commit();
}

function openOrFail(path: string, flags: string, what: string): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    fail('E_IO', `cannot create ${what}: ${(err as Error).message}`);
  }
}
