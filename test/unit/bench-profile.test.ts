// The decode profile's bookkeeping (src/bench/profile.ts) with the reference backend and a fake clock:
// the profiling backend computes exactly what the backend it wraps computes, files each call under
// the row of its weight (by identity) with the bytes that weight holds, and the breakdown's rows add
// up to the measured token time, with the MoE stages' kernels counted once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProfilingBackend, decodeBreakdown } from '../../src/bench/profile.js';
import type { KernelRow } from '../../src/bench/profile.js';
import { refBackend } from '../../src/tensor/ref-backend.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32 } from '../helpers/random.js';

test('ProfilingBackend: same outputs as the wrapped backend; calls, time and bytes per row', () => {
  let now = 0;
  const q = f32Weight('q', [6, 5], randomF32(30, 1));
  const gate = f32Weight('g', [4, 5], randomF32(20, 2));
  const up = f32Weight('u', [4, 5], randomF32(20, 3));
  const stray = f32Weight('s', [3, 5], randomF32(15, 4));
  const norm = f32Weight('n', [5], randomF32(5, 5));
  const rows = new Map<typeof q, KernelRow>([[q, 'attn q/k/v GEMV'], [gate, 'expert gate+up (fused SwiGLU)']]);
  // every inner call takes 2 ms of fake time
  const slow = { ...refBackend, matmul: (...a: Parameters<typeof refBackend.matmul>) => { now += 2; refBackend.matmul(...a); }, swiGlu: (...a: Parameters<typeof refBackend.swiGlu>) => { now += 2; refBackend.swiGlu(...a); } };
  const p = new ProfilingBackend(slow, rows, () => now);
  const x = randomF32(10, 6);
  const [y1, y2] = [new Float32Array(12), new Float32Array(12)];
  p.matmul(y1, x, q, 2);
  refBackend.matmul(y2, x, q, 2);
  assert.deepEqual(y1, y2);
  const [a1, a2] = [new Float32Array(8), new Float32Array(8)];
  p.swiGlu(a1, x, gate, up, 2);
  refBackend.swiGlu(a2, x, gate, up, 2);
  assert.deepEqual(a1, a2);
  p.matmul(new Float32Array(6), x, stray, 2);
  p.rmsNorm(new Float32Array(10), x, norm, 2, 1e-5);
  const s = p.snapshot();
  assert.deepEqual(s.get('attn q/k/v GEMV'), { calls: 1, ms: 2, bytes: 30 * 4 });
  assert.deepEqual(s.get('expert gate+up (fused SwiGLU)'), { calls: 1, ms: 2, bytes: 40 * 4 });
  assert.deepEqual(s.get('other kernels'), { calls: 1, ms: 2, bytes: 15 * 4 });
  assert.deepEqual(s.get('rmsnorm'), { calls: 1, ms: 0, bytes: 0 });
  p.reset();
  assert.equal(p.snapshot().get('attn q/k/v GEMV')!.calls, 0);
});

test('decodeBreakdown: rows add up to the token time; MoE stages exclude their kernels; GB/s from bytes', () => {
  const t = (calls: number, ms: number, bytes: number) => ({ calls, ms, bytes });
  const rows = decodeBreakdown({
    tokens: 10,
    threads: 2,
    forwardMs: 100,
    sampleMs: 2,
    detokenizeMs: 1,
    kernels: new Map<KernelRow, ReturnType<typeof t>>([
      ['attn q/k/v GEMV', t(30, 10, 0.2e9)],
      ['router GEMV', t(10, 3, 0)],
      ['expert gate+up (fused SwiGLU)', t(20, 40, 1e9)],
      ['expert down GEMV', t(20, 20, 0)],
    ]),
    moe: { gate: 5, order: 4, exchange: 1, expert: 66, combine: 2 },
    pool: { jobs: 50, inlineJobs: 30, callerWaitMs: 0.5, pickups: 40, wakeMs: 0.2, sleepWakes: 10 },
    callOverheadUs: 2,
    decodePath: 'per-op',
    perOpMs: 9,
  });
  const get = (w: string) => rows.find((r) => r.what.startsWith(w))!;
  assert.equal(get('attn q/k/v').ms, 1);
  assert.equal(get('attn q/k/v').calls, 3);
  assert.equal(get('attn q/k/v').gbs, 20); // 0.2 GB in 10 ms
  assert.equal(get('expert gate+up').gbs, 25);
  assert.equal(get('MoE routing').ms, 0.2); // gate 5 - router 3, per 10 tokens
  assert.equal(get('MoE plan').ms, 0.5);
  assert.equal(get('MoE experts stage').ms, 0.6); // 66 - 40 - 20
  assert.equal(get('other TS').ms, (100 - 73 - 2 - 5 - 6 - 2) / 10);
  const total = rows.filter((r) => !r.memo).reduce((a, r) => a + r.ms, 0);
  assert.ok(Math.abs(total - 10.3) < 1e-9, `rows add to ${total}`);
  assert.equal(get('memo: JS').ms, (80 * 2) / 1000 / 10);
  assert.match(get('memo: pool, worker').note!, /mean 5\.00 us; 1\.0 jobs/);
});

test('bench generate --profile reports the decode path and the unprofiled token on it and on the per-op path', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { generateModel } = await import('../../src/gen/gen-model.js');
  const { runProfile, formatProfile } = await import('../../src/bench/profile-run.js');
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-profile-'));
  try {
    for (const [arch, path] of [['mixtral', 'fused'], ['qwen2_moe', 'per-op']] as const) {
      const out = join(dir, arch);
      await generateModel({ arch, size: 'tiny', out, seed: 4 });
      const r = await runProfile({ model: out, promptTokens: 8, genTokens: 4, reps: 1, threads: [1], seed: 1, childTimeoutMs: 60_000 }, () => {});
      const t = r.by_threads[0]!;
      assert.equal(t.decode_path, path, arch);
      assert.equal(t.fused_ms !== undefined, path === 'fused', arch);
      assert.ok(t.per_op_ms > 0 && t.rows.some((x) => x.what === 'attention' && x.calls > 0), arch);
      assert.match(formatProfile(r, out), path === 'fused' ? /unprofiled token: fused path [\d.]+ ms, per-op path [\d.]+ ms/ : /decodes on the per-op path/);
      // the fused split: both halves ran every layer and streamed the bytes they hold
      assert.equal(t.fused_split !== undefined, path === 'fused', arch);
      if (t.fused_split) {
        assert.ok(t.fused_split.attentionMs > 0 && t.fused_split.expertsMs > 0 && t.fused_split.tokenMs >= t.fused_split.attentionMs + t.fused_split.expertsMs, arch);
        assert.ok(t.fused_split.attentionBytes > 0 && t.fused_split.expertBytes > 0, arch);
        assert.match(formatProfile(r, out), /experts halves \(grouped experts, combine, residual\) +[\d.]+ ms +[\d.]+ GB\/s/);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
