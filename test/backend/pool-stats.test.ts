// The thread pool's profiling counters (native/pool.h): zero when turned on, a split job is counted
// as one job (its worker pickups at most threads - 1), a one-chunk job as inline, nothing while off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuBackend, getThreads, poolStats, setPoolProfiling, setThreads } from '../../src/tensor/cpu-backend.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32 } from '../helpers/random.js';

test('pool profiling counts split and inline jobs, and only while on', () => {
  const before = getThreads();
  const [n, k] = [2048, 512]; // 1M multiply-adds over many column blocks: split across 2 threads
  const w = f32Weight('w', [n, k], randomF32(n * k, 1));
  const x = randomF32(k, 2);
  const y = new Float32Array(n);
  try {
    setThreads(2);
    setPoolProfiling(true);
    assert.deepEqual(poolStats(), { jobs: 0, inlineJobs: 0, callerWaitMs: 0, pickups: 0, wakeMs: 0, sleepWakes: 0 });
    for (let i = 0; i < 5; i++) cpuBackend.matmul(y, x, w, 1);
    const split = poolStats();
    assert.equal(split.jobs, 5);
    assert.equal(split.inlineJobs, 0);
    assert.ok(split.pickups <= 5, `pickups ${split.pickups}`);
    assert.ok(split.callerWaitMs >= 0 && split.wakeMs >= 0);
    // one token of attention is one chunk: the pool runs it on the calling thread
    const v = new Float32Array(2);
    cpuBackend.attention(new Float32Array(2), v, [{ kCache: v, vCache: v, tokens: 1, pos0: 0 }], 1, 1, 2, 0);
    assert.equal(poolStats().inlineJobs, 1);
    setPoolProfiling(false);
    cpuBackend.matmul(y, x, w, 1);
    assert.equal(poolStats().jobs, 5);
  } finally {
    setPoolProfiling(false);
    setThreads(before);
  }
});
