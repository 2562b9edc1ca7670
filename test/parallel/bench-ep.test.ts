/**
 * `moesaic bench ep` end to end on a tiny skewed model with 2 ranks: every configuration runs, the
 * Max Load measured from the rows each rank ran equals `simulate placement`'s prediction on the same
 * trace, static gating's padded exchange moves more bytes than dynamic gating's, and MoEShard's load
 * is even. (Speed is what the bench reports, never what a test asserts.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { mpiAvailable } from '../../src/parallel/mpi-communicator.js';
import type { EpBenchResult } from '../../src/bench/ep-bench.js';
import { cliOk, genModel, removeDir, tempDir } from '../reference/harness.js';
import { mpiMissing } from './mpi-run.js';

const skip = mpiAvailable() ? mpiMissing() : 'the MPI addon is not built (no mpicc at npm install)';
let dir: string;
before(async () => {
  if (skip) return;
  dir = tempDir('moesaic-bench-ep-');
  await genModel(join(dir, 'm'), 'mixtral', { seed: 5, skew: 2 });
});
after(() => dir && removeDir(dir));

test('bench ep: measured Max Load matches the simulator, static sends more than dynamic, shard is even', { skip }, () => {
  const out = cliOk(['bench', 'ep', '--model', join(dir, 'm'), '--ranks', '2', '--prompts', '4', '--prompt-tokens', '8', '--gen-tokens', '6', '--reps', '1', '--json']);
  const r = JSON.parse(out) as EpBenchResult;
  const by = new Map(r.configs.map((c) => [c.name, c]));
  assert.deepEqual([...by.keys()], ['contiguous', 'roundrobin', 'greedy', 'anticorr', 'eplb', 'eplb r=10', 'static (contiguous)', 'chunks=4 (contiguous)', 'shard']);
  for (const name of ['contiguous', 'roundrobin', 'greedy', 'anticorr', 'chunks=4 (contiguous)']) {
    const c = by.get(name)!;
    assert.ok(Math.abs(c.max_load - c.predicted_max_load!) < 1e-9, `${name}: measured ${c.max_load}, predicted ${c.predicted_max_load}`);
    assert.ok(c.max_load >= 0.5 && c.max_load <= 1, `${name}: Max Load ${c.max_load} outside [1/N, 1]`);
  }
  assert.ok(by.get('static (contiguous)')!.mb_exchanged > by.get('contiguous')!.mb_exchanged);
  assert.equal(by.get('shard')!.max_load, 0.5);
  assert.ok(by.get('eplb r=10')!.expert_mb_per_rank > by.get('eplb')!.expert_mb_per_rank, 'replicas hold more expert weights per rank');
  for (const c of r.configs) assert.ok(c.tok_s > 0 && c.rows_max_mean >= 1, c.name);
});
