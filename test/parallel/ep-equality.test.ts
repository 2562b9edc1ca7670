/**
 * Expert parallelism gives the single-process engine's results (docs/parallel.md): for 1, 2 and 4
 * MPI ranks, every placement, EPLB replicas, FSMoE chunking, MoEShard, static gating's padded
 * exchange and online rebalancing (experts move between ranks mid-generation), on all four architectures, data-parallel logits are within 1e-5 relative and greedy ids
 * are identical. One mpirun per rank count runs every configuration (test/parallel/ep-worker.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/model/model.js';
import { mpiAvailable } from '../../src/parallel/mpi-communicator.js';
import { cliOk, genModel, removeDir, rowRelErr, tempDir } from '../reference/harness.js';
import { runWorker, mpiMissing } from './mpi-run.js';
import type { WorkerJob, WorkerResult } from './ep-worker.js';

const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const;
// five prompts of different lengths: with 4 ranks, rank 0 has two sequences and the others one
const PROMPTS = [[5, 17, 3, 99, 42, 7], [11, 12], [300, 1, 2, 3], [77], [8, 9, 10, 11, 12, 13, 14, 15]];
const MAX_TOKENS = 5;

function configs(ranks: number): WorkerJob['configs'] {
  const all: WorkerJob['configs'] = [
    { name: 'contiguous', parallel: {} },
    { name: 'static', gating: 'static', capacityFactor: 1, parallel: {} },
  ];
  if (ranks === 1) return all;
  return [
    ...all,
    { name: 'roundrobin', parallel: { placement: 'roundrobin' } },
    { name: 'greedy', parallel: { placement: 'greedy' }, trace: true },
    { name: 'anticorr', parallel: { placement: 'anticorr' }, trace: true },
    { name: 'eplb', parallel: { placement: 'eplb' }, trace: true },
    { name: 'eplb-replicas', parallel: { placement: 'eplb', replicas: 8 + ranks }, trace: true },
    { name: 'chunks', parallel: { epChunks: 3 } },
    { name: 'shard', parallel: { epMode: 'shard' } },
    { name: 'rebalance', parallel: { rebalanceEvery: 2 } },
    { name: 'rebalance-eplb', parallel: { placement: 'eplb', replicas: 8 + ranks, rebalanceEvery: 3 }, trace: true },
  ];
}

const skip = mpiAvailable() ? mpiMissing() : 'the MPI addon is not built (no mpicc at npm install)';

describe('expert parallelism matches the single-process engine', { skip }, () => {
  let dir: string;
  const models: string[] = [];
  const traces: string[] = [];
  const expected = new Map<string, { logits: Float32Array[][]; ids: number[][] }>();

  before(async () => {
    dir = tempDir('moesaic-ep-');
    for (const arch of ARCHS) {
      const m = await genModel(join(dir, arch), arch, { seed: 3, skew: 1 });
      const trace = join(dir, `${arch}.jsonl`);
      cliOk(['trace', '--model', m, '--ids', '4,8,15,16,23,42', '--max-tokens', '12', '--out', trace]);
      models.push(m);
      traces.push(trace);
      const model = await loadModel(m, { backend: 'cpu', threads: 1 });
      expected.set(m, {
        logits: PROMPTS.map((p) => model.logits(p)),
        ids: await model.generateBatch(PROMPTS, { maxTokens: MAX_TOKENS, temperature: 0, stopAtEos: false }),
      });
    }
  });
  after(() => removeDir(dir));

  for (const ranks of [1, 2, 4]) {
    test(`${ranks} rank(s): every configuration, all four architectures`, () => {
      const job: WorkerJob = { models, prompts: PROMPTS, maxTokens: MAX_TOKENS, configs: configs(ranks), traces };
      const jobFile = join(dir, `job-${ranks}.json`);
      writeFileSync(jobFile, JSON.stringify(job));
      const results = runWorker(ranks, jobFile) as WorkerResult[];
      assert.equal(results.length, models.length * job.configs.length);
      for (const r of results) {
        const want = expected.get(r.model)!;
        const where = `${r.model.split('/').pop()} ${r.config} ${ranks} ranks`;
        r.logits.forEach((rows, p) =>
          rows.forEach((row, t) => {
            const err = rowRelErr(row, Float64Array.from(want.logits[p]![t]!));
            assert.ok(err <= 1e-5, `${where}: prompt ${p} position ${t}: relative error ${err}`);
          }),
        );
        assert.deepEqual(r.ids, want.ids, `${where}: greedy ids differ`);
        if (ranks > 1) assert.ok(r.bytes > 0, `${where}: no bytes exchanged`);
        if (r.config.startsWith('rebalance')) assert.ok(r.rebalances >= 2, `${where}: ${r.rebalances} rebalances`);
      }
      if (ranks > 1) {
        // static gating's padded buffers outweigh dynamic gating's exact rows on every model
        for (const m of models) {
          const of = (c: string): WorkerResult => results.find((r) => r.model === m && r.config === c)!;
          assert.ok(of('static').bytes > of('contiguous').bytes, `${m}: static sent ${of('static').bytes} B, dynamic ${of('contiguous').bytes} B`);
          assert.ok(of('static').expertRows > of('contiguous').expertRows, `${m}: static ran no padding rows`);
        }
      }
    });
  }
});
