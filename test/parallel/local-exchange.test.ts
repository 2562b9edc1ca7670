/**
 * The expert-parallel exchange without MPI: 2 and 4 in-process ranks (worker threads over the
 * LocalCommunicator), one of them with no tokens, run one MoE layer with dynamic gating, whole-expert
 * placements and chunking; each rank's output equals the single-process layer on its own tokens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { moeForward } from '../../src/moe/moe-layer.js';
import { dynamicDispatch } from '../../src/moe/dispatch-dynamic.js';
import { localWorld } from '../../src/parallel/local-communicator.js';
import { Scratch } from '../../src/tensor/scratch.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { layerCase } from './layer-case.js';

const WORKER = new URL('./local-rank.js', import.meta.url);

function single(rank: number): Float32Array {
  const c = layerCase(rank);
  const out = new Float32Array(c.T * c.H);
  moeForward({ backend: refBackend, scratch: new Scratch(), router: c.router, policy: dynamicDispatch }, 0, c.weights, c.k, out, c.x, c.T);
  return out;
}

for (const N of [2, 4]) {
  for (const [placement, chunks] of [['contiguous', 1], ['roundrobin', 3]] as const) {
    test(`${N} in-process ranks, ${placement}, ${chunks} chunk(s): each rank gets the single-process output`, async () => {
      const world = localWorld(N);
      const results = await Promise.all(
        Array.from({ length: N }, (_, rank) =>
          new Promise<{ out: Float32Array; rows: number; sent: number }>((resolve, reject) => {
            const w = new Worker(WORKER, { workerData: { world, rank, placement, chunks } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
        ),
      );
      let rows = 0;
      results.forEach((r, rank) => {
        const want = single(rank);
        assert.equal(r.out.length, want.length, `rank ${rank}`);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(r.out[i]! - want[i]!) <= 1e-5 * (1 + Math.abs(want[i]!)), `rank ${rank} element ${i}: ${r.out[i]} vs ${want[i]}`);
        rows += r.rows;
      });
      const assignments = Array.from({ length: N }, (_, r) => layerCase(r).T * 2).reduce((a, b) => a + b, 0);
      assert.equal(rows, assignments, 'every assignment ran exactly once on some rank');
      assert.ok(results.some((r) => r.sent > 0), 'rows crossed between ranks');
    });
  }
}
