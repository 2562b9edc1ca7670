/**
 * Expert parallelism across two hosts for real: two network namespaces joined by a veth pair, two
 * ranks in each, every byte between the hosts over TCP (OpenMPI's tcp transport only, bound to the
 * veth subnet). The same equality check as on one host: logits within 1e-5 relative and identical
 * greedy ids, with MPI's flat all-to-all and with MoNTA's hierarchical one (a leader per host). Skipped with the reason where namespaces cannot be made.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/model/model.js';
import { mpirunPlan } from '../../src/parallel/launch.js';
import { mpiAvailable } from '../../src/parallel/mpi-communicator.js';
import { genModel, removeDir, rowRelErr, tempDir } from '../reference/harness.js';
import type { WorkerJob, WorkerResult } from './ep-worker.js';
import { mpiMissing } from './mpi-run.js';
import { makeTwoHosts, type TwoHosts } from './netns.js';

const PROMPTS = [[5, 17, 3, 99], [11, 12, 13], [300, 1], [77, 78, 79, 80, 81]];
const WORKER = join(fileURLToPath(new URL('.', import.meta.url)), 'ep-worker.js');

let dir = '';
let hosts: TwoHosts | string = 'not set up';
before(() => {
  if (!mpiAvailable() || mpiMissing()) return;
  dir = tempDir('moesaic-two-hosts-');
  hosts = makeTwoHosts(dir);
});
after(() => {
  if (typeof hosts !== 'string') hosts.remove();
  if (dir) removeDir(dir);
});

test('two hosts (network namespaces, TCP): 4 ranks give the single-process results', async (t) => {
  const why = !mpiAvailable() ? 'the MPI addon is not built' : (mpiMissing() ?? (typeof hosts === 'string' ? hosts : undefined));
  if (why) return t.skip(why);
  const h = hosts as TwoHosts;
  const model = await genModel(join(dir, 'm'), 'mixtral', { seed: 9, skew: 1 });
  const single = await loadModel(model, { threads: 1 });
  const want = { logits: PROMPTS.map((p) => single.logits(p)), ids: await single.generateBatch(PROMPTS, { maxTokens: 4, temperature: 0, stopAtEos: false }) };
  const job: WorkerJob = {
    models: [model],
    prompts: PROMPTS,
    maxTokens: 4,
    traces: [''],
    configs: [
      { name: 'contiguous', parallel: {} },
      { name: 'chunks', parallel: { epChunks: 2 } },
      { name: 'shard', parallel: { epMode: 'shard' } },
      { name: 'hierarchical', parallel: { epA2a: 'hierarchical' } },
      { name: 'hierarchical-chunks', parallel: { epA2a: 'hierarchical', epChunks: 2 } },
      { name: 'auto', parallel: { epA2a: 'auto' } },
    ],
  };
  const jobFile = join(dir, 'job.json');
  writeFileSync(jobFile, JSON.stringify(job));
  const plan = mpirunPlan(4, [process.execPath, WORKER], [], { root: true, env: { ...process.env, MOESAIC_EP_WORKER: jobFile } });
  const hostArgs = ['--host', `${h.addresses[0]}:2,${h.addresses[1]}:2`, '--mca', 'plm_rsh_agent', h.agent];
  const tcpOnly = ['--mca', 'btl', 'tcp,self', '--mca', 'btl_tcp_if_include', h.subnet, '--mca', 'oob_tcp_if_include', h.subnet];
  // mpirun itself runs on the first "host"
  const r = spawnSync('ip', ['netns', 'exec', h.namespaces[0], plan.command, ...hostArgs, ...tcpOnly, ...plan.args], { env: plan.env, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `mpirun across namespaces failed: ${r.error?.message ?? r.stderr.slice(-2000)}`);
  const results = JSON.parse(r.stdout.trim().split('\n').pop()!) as WorkerResult[];
  assert.equal(results.length, job.configs.length);
  for (const res of results) {
    res.logits.forEach((rows, p) =>
      rows.forEach((row, i) => {
        const err = rowRelErr(row, Float64Array.from(want.logits[p]![i]!));
        assert.ok(err <= 1e-5, `${res.config}: prompt ${p} position ${i}: relative error ${err}`);
      }),
    );
    assert.deepEqual(res.ids, want.ids, `${res.config}: greedy ids differ`);
    assert.ok(res.bytes > 0, `${res.config}: nothing crossed between ranks`);
  }
  assert.deepEqual(results.map((x) => x.hosts), job.configs.map(() => 2), 'ranks did not run on two different hosts');
});
