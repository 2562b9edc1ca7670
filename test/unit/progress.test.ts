// Progress of long silent steps: the GGUF writer reports each tensor; the CLI prints at most a line
// every few seconds, and always the last one once it has printed any.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { progressLines } from '../../src/cli/progress.js';
import { GgmlType } from '../../src/model/gguf/format.js';
import { writeGguf } from '../../src/model/gguf/writer.js';

test('writeGguf reports every tensor written, in order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-progress-'));
  try {
    const calls: [number, number][] = [];
    const tensor = (name: string) => ({ name, type: GgmlType.F32, ne: [4], produce: (emit: (b: Uint8Array) => void) => emit(new Uint8Array(16)) });
    writeGguf(join(dir, 'p.gguf'), new Map(), [tensor('a'), tensor('b'), tensor('c')], 32, (done, total) => calls.push([done, total]));
    assert.deepEqual(calls, [[1, 3], [2, 3], [3, 3]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function captureStderr(fn: () => void): string[] {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (lines.push(chunk), true)) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return lines;
}

test('progress lines: every call when the interval is 0; none for a run shorter than the interval', () => {
  const every = captureStderr(() => {
    const p = progressLines('export-gguf', 'tensors', 0);
    for (let i = 1; i <= 4; i++) p(i, 4);
  });
  assert.deepEqual(every, ['export-gguf: 1/4 tensors (25%)\n', 'export-gguf: 2/4 tensors (50%)\n', 'export-gguf: 3/4 tensors (75%)\n', 'export-gguf: 4/4 tensors (100%)\n']);
  const quiet = captureStderr(() => {
    const p = progressLines('export-gguf', 'tensors', 1e9);
    for (let i = 1; i <= 4; i++) p(i, 4);
  });
  assert.deepEqual(quiet, []);
});
