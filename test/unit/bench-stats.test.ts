// bench generate's reductions (issue 3): medians, per-figure ratios, the figures of one run and the
// report's JSON shape, on made-up run records (no model, no child processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agreeingPrefix, engineReport, runFigures } from '../../src/bench/generate-bench.js';
import type { RunResult } from '../../src/bench/protocol.js';
import { formatGenerateTable } from '../../src/bench/report.js';
import { median, medianRecord, ratioRecord } from '../../src/bench/stats.js';

test('median: odd, even, unsorted, empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([5]), 5);
  assert.ok(Number.isNaN(median([])));
});

test('medianRecord takes the median of each key on its own', () => {
  const m = medianRecord([
    { a: 1, b: 30 },
    { a: 3, b: 10 },
    { a: 2, b: 20 },
  ]);
  assert.deepEqual(m, { a: 2, b: 20 });
});

test('ratioRecord divides key by key; a zero denominator gives NaN, a missing one no key', () => {
  const r = ratioRecord<'x' | 'y' | 'z'>({ x: 6, y: 1, z: 2 }, { x: 3, y: 0 });
  assert.equal(r.x, 2);
  assert.ok(Number.isNaN(r.y!));
  assert.equal('z' in r, false);
});

const cost = { decodeBytesPerToken: 2e9, macsPerToken: 1e6, prefillAttentionMacs: 5e5 };
const run = (prefillMs: number, decodeMs: number, ids: number[] = [1, 2, 3, 4, 5]): RunResult => ({
  engine: 'moesaic',
  prefillMs,
  ttftMs: prefillMs + 1,
  decodeMs,
  genTokens: 5,
  promptTokens: 100,
  peakRssBytes: 512 * 2 ** 20,
  ids,
  cost,
  build: 'test build',
  threads: 2,
});

test('runFigures: prefill P/t, decode (N-1)/t, GB/s from bytes per token, GFLOP/s, MiB', () => {
  const f = runFigures(run(500, 2000), cost);
  assert.equal(f.prefill_tok_s, 200); // 100 tokens in 0.5 s
  assert.equal(f.ttft_ms, 501);
  assert.equal(f.decode_tok_s, 2); // 4 decode steps in 2 s
  assert.equal(f.decode_gb_s, 4); // 2 tokens/s x 2 GB
  assert.equal(f.peak_rss_mib, 512);
  assert.equal(f.prefill_gflop_s, (2 * (1e6 * 100 + 5e5)) / 0.5 / 1e9);
});

test('engineReport: medians over runs, raw runs kept, first run ids', () => {
  const r = engineReport([run(500, 2000), run(250, 1000, [9]), run(1000, 4000)], cost, 'M');
  assert.equal(r.prefill_tok_s, 200);
  assert.equal(r.decode_tok_s, 2);
  assert.equal(r.runs.length, 3);
  assert.deepEqual(r.ids, [1, 2, 3, 4, 5]);
  assert.equal(r.model, 'M');
});

test('agreeingPrefix counts leading equal ids', () => {
  assert.equal(agreeingPrefix([1, 2, 3], [1, 2, 4]), 2);
  assert.equal(agreeingPrefix([1, 2], [1, 2, 3]), 2);
  assert.equal(agreeingPrefix([], [1]), 0);
});

test('the table names both engines, every figure and the ratio', () => {
  const m = engineReport([run(500, 2000)], cost, 'M');
  const l = engineReport([{ ...run(1000, 4000), engine: 'llama.cpp', build: 'node-llama-cpp x' }], cost, 'M.gguf');
  const text = formatGenerateTable({
    moesaic: {
      ...m,
      prompt_tokens: 100,
      gen_tokens: 5,
      reps: 1,
      decode_bytes_per_token: cost.decodeBytesPerToken,
      macs_per_token: cost.macsPerToken,
      prefill_flops: 1,
      memory_bandwidth_gb_s: 8,
      bandwidth_method: 'js-approx',
      decode_pct_of_bandwidth: 50,
      machine: { cpu: 'Test CPU', cores: 2, load_avg_before: 3, load_avg_after: 1 },
    },
    llama_cpp: { ...l, greedy_ids_agree: 5 },
    ratio: { prefill_tok_s: 2, decode_tok_s: 2 },
  });
  for (const s of ['prefill tokens/s', 'decode tokens/s', 'time to first token', 'peak resident memory', 'decode weight GB/s', 'prefill GFLOP/s', '2.00x', 'node-llama-cpp x', 'APPROXIMATE', '50.0%', 'first 5 of 5 agree', 'Test CPU, 2 cores', 'OTHER WORK WAS RUNNING']) {
    assert.ok(text.includes(s), `table lacks '${s}':\n${text}`);
  }
});
