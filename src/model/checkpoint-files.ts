import { closeSync, constants, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import type { ErrorCode } from '../errors.js';
import { fail } from '../errors.js';

/**
 * Reading the files of a checkpoint folder with errors that say what is wrong. Only regular files are
 * read: opening a FIFO blocks until a writer appears (forever, for a stray `mkfifo`), and a device or
 * socket is never a checkpoint, so anything else is refused before it is opened for a blocking read.
 */

/** What `statSync` found at a path, in words, for "is not a regular file" errors. */
function kindOf(path: string): string | null {
  let st;
  try {
    st = statSync(path);
  } catch {
    return null; // missing or unreadable: the open below reports it
  }
  return kindOfStats(st);
}

function kindOfStats(st: Stats): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}

/** Fails unless `path` is a regular file (symbolic links are followed). */
export function requireRegularFile(path: string, code: ErrorCode = 'E_BAD_CHECKPOINT'): void {
  const kind = kindOf(path);
  if (kind !== null) fail(code, `${path} is ${kind}, not a regular file`);
}

/** Why a file could not be opened or read, in words (permission denied, no such file, ...). */
export function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  return (e as Error).message;
}

/**
 * The text of a regular file. The file is opened non-blocking, so a FIFO put in place after any
 * earlier check still cannot block, and checked with fstat before a byte is read.
 * `hint` is appended to a "no such file" message (e.g. "is --model a checkpoint folder?").
 */
export function readRegularText(path: string, code: ErrorCode, hint = ''): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const reason = ioReason(e);
    fail(reason === 'permission denied' ? 'E_IO' : code, `cannot read ${path}: ${reason}${reason === 'no such file' && hint ? `: ${hint}` : ''}`);
  }
  try {
    const kind = kindOfStats(fstatSync(fd));
    if (kind !== null) fail(code, `${path} is ${kind}, not a regular file`);
    try {
      return readFileSync(fd, 'utf8');
    } catch (e) {
      fail(code, `cannot read ${path}: ${ioReason(e)}`);
    }
  } finally {
    closeSync(fd);
  }
}

/** A regular file's JSON; a syntax error names the file. */
export function readRegularJson(path: string, code: ErrorCode, hint = ''): unknown {
  const text = readRegularText(path, code, hint);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    fail(code, `${path} is not valid JSON: ${(e as Error).message}`);
  }
}
