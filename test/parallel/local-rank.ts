/**
 * One in-process rank of test/parallel/local-exchange.test.ts (a worker thread): runs one MoE layer
 * under expert parallelism over the LocalCommunicator and posts its output back. Does nothing
 * outside a worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { moeForward } from '../../src/moe/moe-layer.js';
import { dynamicDispatch } from '../../src/moe/dispatch-dynamic.js';
import { expertParallel, zeroCounters } from '../../src/parallel/ep-dispatch.js';
import { buildExpertMap } from '../../src/parallel/expert-map.js';
import { LocalCommunicator, type LocalWorld } from '../../src/parallel/local-communicator.js';
import { RankExperts } from '../../src/parallel/rank-experts.js';
import { Scratch } from '../../src/tensor/scratch.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { layerCase } from './layer-case.js';

interface Job {
  world: LocalWorld;
  rank: number;
  placement: 'contiguous' | 'roundrobin';
  chunks: number;
}

if (parentPort && workerData) {
  const { world, rank, placement, chunks } = workerData as Job;
  const comm = new LocalCommunicator(world, rank);
  const c = layerCase(rank);
  const map = buildExpertMap([true], c.E, world.size, { placement });
  const held = [c.weights.experts.map((w, e) => (map.layers[0]!.holders[e]!.includes(rank) ? w : undefined))];
  const counters = zeroCounters();
  const ctx = { backend: refBackend, scratch: new Scratch(), router: c.router, policy: expertParallel(dynamicDispatch, comm, () => map, chunks, counters), experts: new RankExperts(held, rank) };
  const out = new Float32Array(c.T * c.H);
  moeForward(ctx, 0, c.weights, c.k, out, c.x, c.T);
  parentPort.postMessage({ out, rows: counters.expertRows, sent: comm.stats.bytesSent });
}
