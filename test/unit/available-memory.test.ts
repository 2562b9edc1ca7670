import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableMemoryBytes } from '../../src/util/available-memory.js';

test('available memory is positive and never more than the kernel says is available', (t) => {
  let meminfo: string;
  try {
    meminfo = readFileSync('/proc/meminfo', 'utf8');
  } catch {
    t.skip('no /proc/meminfo (not Linux)');
    return;
  }
  const kernel = Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)![1]) * 1024;
  const got = availableMemoryBytes();
  assert.ok(got !== undefined && got > 0, `got ${got}`);
  // MemAvailable moves between the two reads: allow 256 MiB of drift
  assert.ok(got <= kernel + 2 ** 28, `${got} > MemAvailable ${kernel}`);
});
