import { existsSync, statSync } from 'node:fs';
import { fail } from '../errors.js';
import { checkWritable } from '../io/output-target.js';

/**
 * Option parsers shared by every command: each validates its range and names the option in the
 * error, so an absurd value fails before any work starts.
 */
export function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      fail('E_BAD_OPTION', `${name} must be an integer in [${min}, ${max}], got '${value}'`);
    }
    return n;
  };
}

export function floatArg(name: string, min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      fail('E_BAD_OPTION', `${name} must be a number in [${min}, ${max}], got '${value}'`);
    }
    return n;
  };
}

export function choiceArg<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) {
      fail('E_BAD_OPTION', `${name} must be one of ${choices.join('|')}, got '${value}'`);
    }
    return value as T;
  };
}

/** "1,2,3" -> [1, 2, 3]; every element a non-negative integer. */
export function idListArg(name: string) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p))) {
      fail('E_BAD_OPTION', `${name} must be a comma-separated list of non-negative integers, got '${value}'`);
    }
    return parts.map(Number);
  };
}

/**
 * A file or folder to write: not empty, not an existing folder (for a file), its folder exists and is
 * writable, and the disk is not full, so a bad path fails before any work is done rather than after.
 */
export function outputPathArg(name: string, kind: 'file' | 'dir' = 'file') {
  return (value: string): string => {
    if (value.trim() === '') fail('E_BAD_OPTION', `${name} must not be empty`);
    checkWritable(value, kind, `${name} ${value}`);
    return value;
  };
}

/** A file to read: not empty, existing, and not a folder. */
export function inputFileArg(name: string) {
  return (value: string): string => {
    if (value.trim() === '') fail('E_BAD_OPTION', `${name} must not be empty`);
    if (!existsSync(value)) fail('E_IO', `${name} ${value} does not exist`);
    if (statSync(value).isDirectory()) fail('E_IO', `${name} ${value} is a folder, expected a file`);
    return value;
  };
}

/** A byte size: a number with an optional K, M, G or T suffix (powers of 1024), e.g. 512M, 2G. */
export function sizeArg(name: string, min = 1) {
  return (value: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(value);
    const n = m ? Math.round(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase())) : NaN;
    if (!Number.isSafeInteger(n) || n < min) fail('E_BAD_OPTION', `${name} must be a size like 512M or 2G (at least ${min} bytes), got '${value}'`);
    return n;
  };
}
