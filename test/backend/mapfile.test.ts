import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cpuBackend, mapFile } from '../../src/tensor/cpu-backend.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { f32ToBf16 } from '../../src/tensor/dtype.js';
import type { Weight } from '../../src/tensor/weight.js';

/** mapFile: whole-file mmap as an ArrayBuffer (zero-copy weight loading). */

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-mapfile-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('mapFile returns the file contents, and writes to the buffer never reach the file', () => {
  withTempDir((dir) => {
    const path = join(dir, 'weights.bin');
    const bytes = randomBytes(3 * 4096 + 123); // not a whole number of pages
    writeFileSync(path, bytes);
    const buf = mapFile(path);
    assert.equal(buf.byteLength, bytes.length);
    assert.ok(Buffer.from(buf).equals(bytes));
    // Typed views at an offset read the same bytes (how weights are viewed).
    const view = new Uint16Array(buf, 8, 100);
    assert.equal(view[3], bytes.readUInt16LE(8 + 6));
    // MAP_PRIVATE: a stray write is copy-on-write.
    new Uint8Array(buf)[0] = bytes[0]! ^ 0xff;
    assert.equal(new Uint8Array(buf)[0], bytes[0]! ^ 0xff);
    assert.ok(readFileSync(path).equals(bytes), 'the file on disk changed');
  });
});

test('mapFile of an empty file is an empty buffer', () => {
  withTempDir((dir) => {
    const path = join(dir, 'empty.bin');
    writeFileSync(path, Buffer.alloc(0));
    assert.equal(mapFile(path).byteLength, 0);
  });
});

test('mapFile of a missing file or a directory fails with E_IO naming the path', () => {
  withTempDir((dir) => {
    const missing = join(dir, 'no-such-file.safetensors');
    assert.throws(() => mapFile(missing), (e: Error & { code?: string }) => e.code === 'E_IO' && e.message.includes(missing));
    assert.throws(() => mapFile(dir), (e: Error & { code?: string }) => e.code === 'E_IO' && e.message.includes(dir));
  });
});

test('kernels read weights in place from a mapped file', () => {
  withTempDir((dir) => {
    const n = 37;
    const k = 70;
    const header = 24; // bytes before the tensor, as a safetensors header would be
    const bits = new Uint16Array(n * k);
    for (let i = 0; i < bits.length; i++) bits[i] = f32ToBf16(Math.sin(i * 0.37));
    const path = join(dir, 'w.bin');
    writeFileSync(path, Buffer.concat([Buffer.alloc(header, 0xab), Buffer.from(bits.buffer)]));
    const w: Weight = { name: 'w', dtype: 'bf16', shape: [n, k], data: new Uint16Array(mapFile(path), header, n * k) };
    const x = Float32Array.from({ length: 2 * k }, (_, i) => Math.cos(i * 0.11));
    const got = new Float32Array(2 * n);
    const want = new Float32Array(2 * n);
    cpuBackend.matmul(got, x, w, 2);
    refBackend.matmul(want, x, { ...w, data: bits }, 2);
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)), `output ${i}`);
  });
});
