// The expert store (src/memory/expert-store.ts + native/expert-io.cc): experts read with pread on I/O
// threads into arena slots hold exactly the bytes the memory-mapped views hold, at awkward offsets and
// dtypes; short reads (a file truncated after load) and closed stores are clear E_IO errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapFile } from '../../src/tensor/cpu-backend.js';
import { MappedFiles } from '../../src/memory/mapped-files.js';
import { ExpertStore } from '../../src/memory/expert-store.js';
import { expertReadPlan, type ExpertReadPlan } from '../../src/memory/slot-layout.js';
import type { SwiGluWeights } from '../../src/moe/swiglu.js';
import type { Weight } from '../../src/tensor/weight.js';
import { rng } from '../helpers/random.js';

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-store-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A file of random bytes and `experts` experts viewed into it at element-aligned, page-unaligned offsets. */
function expertFile(dir: string, experts: number, seed: number, f32: boolean) {
  const r = rng(seed);
  const elem = f32 ? 4 : 2;
  const [ffn, hidden] = [24, 40];
  const n = ffn * hidden;
  const bytes = Buffer.alloc(experts * 3 * (n * elem + 100) + 5000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  const path = join(dir, 'experts.bin');
  writeFileSync(path, bytes);
  const files = new MappedFiles(mapFile);
  const buf = files.map(path);
  let at = 12; // not page-aligned
  const view = (name: string, shape: number[]): Weight => {
    const data = f32 ? new Float32Array(buf, at, n) : new Uint16Array(buf, at, n);
    at += n * elem + Math.floor(r() * 40) * elem; // gaps between tensors, sometimes none
    return { name, dtype: f32 ? 'f32' : 'bf16', shape, data };
  };
  const weights: SwiGluWeights[] = [];
  for (let e = 0; e < experts; e++) {
    weights.push({ gate: view(`e${e}.gate`, [ffn, hidden]), up: view(`e${e}.up`, [ffn, hidden]), down: view(`e${e}.down`, [hidden, ffn]) });
  }
  const plans = weights.map((w, e) => expertReadPlan(w, files, `expert ${e}`));
  return { path, weights, plans, fileBytes: bytes.length };
}

function sameBytes(a: Weight, b: Weight): boolean {
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
}

function slotSize(plans: readonly ExpertReadPlan[]): number {
  return Math.max(...plans.map((p) => p.slotBytes));
}

for (const f32 of [true, false]) {
  test(`slots hold the same ${f32 ? 'f32' : 'bf16'} bytes as the mapped views, loaded concurrently and reused`, () => {
    withTempDir((dir) => {
      const { weights, plans } = expertFile(dir, 7, f32 ? 1 : 2, f32);
      const store = new ExpertStore(3, slotSize(plans), 2);
      try {
        for (let round = 0; round < 3; round++) {
          const batch = [0, 1, 2].map((s) => (s * 3 + round) % 7);
          batch.forEach((e, s) => store.load(s, plans[e]!, `expert ${e}`));
          // waitAny returns settled slots until all are
          const left = [0, 1, 2];
          while (left.length > 0) {
            const s = store.waitAny(left);
            assert.ok(store.settled(s));
            left.splice(left.indexOf(s), 1);
          }
          batch.forEach((e, s) => {
            const got = store.weights(s);
            for (const role of ['gate', 'up', 'down'] as const) {
              assert.ok(sameBytes(got[role], weights[e]![role]), `expert ${e} ${role} in slot ${s} differs`);
              assert.deepEqual(got[role].shape, weights[e]![role].shape);
              assert.equal(got[role].data.constructor, weights[e]![role].data.constructor);
            }
          });
        }
        const t = store.totals();
        assert.ok(t.bytes >= 9 * plans[0]!.tensorBytes, `bytes read ${t.bytes}`);
      } finally {
        store.close();
      }
    });
  });
}

test('a file truncated after load: the read is short and the error names the expert and file', () => {
  withTempDir((dir) => {
    const { path, plans, fileBytes } = expertFile(dir, 4, 3, true);
    const store = new ExpertStore(2, slotSize(plans), 1);
    try {
      store.load(0, plans[0]!, 'expert 0 of layer 0');
      assert.ok(store.weights(0).gate.data.length > 0);
      truncateSync(path, Math.floor(fileBytes / 2)); // the later experts are gone
      store.load(1, plans[3]!, 'expert 3 of layer 0');
      assert.throws(
        () => store.weights(1),
        (e: Error & { code?: string }) => e.code === 'E_IO' && /expert 3 of layer 0/.test(e.message) && /short read/.test(e.message) && e.message.includes(path),
      );
      // the slot can be reused for an expert that is still whole
      store.load(1, plans[0]!, 'expert 0 of layer 0');
      assert.ok(store.weights(1).up.data.length > 0);
    } finally {
      store.close();
    }
  });
});

test('a read that fails (EISDIR: the path is now a folder) is an E_IO naming the error, and the slot is never handed out', () => {
  withTempDir((dir) => {
    const { plans } = expertFile(dir, 1, 5, true);
    const store = new ExpertStore(1, slotSize(plans), 1);
    try {
      const broken = { ...plans[0]!, paths: [dir] };
      store.load(0, broken, 'expert 0 of layer 2');
      assert.throws(() => store.weights(0), (e: Error & { code?: string }) => e.code === 'E_IO' && /expert 0 of layer 2: read of .* failed: Is a directory/.test(e.message));
      assert.throws(() => store.weights(0), /Is a directory/); // still failed: no stale bytes
    } finally {
      store.close();
    }
  });
});

test('a missing file and a closed store are E_IO errors, never a hang', () => {
  withTempDir((dir) => {
    const { path, plans } = expertFile(dir, 2, 4, false);
    const store = new ExpertStore(1, slotSize(plans), 1);
    rmSync(path);
    assert.throws(() => store.load(0, plans[0]!, 'expert 0'), (e: Error & { code?: string }) => e.code === 'E_IO' && e.message.includes(path));
    store.close();
    assert.throws(() => store.weights(0), (e: Error & { code?: string }) => e.code === 'E_IO');
  });
});

test('an expert whose tensor is a copy (not in a mapped file) is refused with a clear message', () => {
  const files = new MappedFiles(mapFile);
  const w: Weight = { name: 'model.layers.0.mlp.experts.0.gate_proj.weight', dtype: 'bf16', shape: [2, 2], data: new Uint16Array(4) };
  assert.throws(() => expertReadPlan({ gate: w, up: w, down: w }, files, 'expert 0 of layer 0'), /not stored as plain bf16 bytes/);
});
