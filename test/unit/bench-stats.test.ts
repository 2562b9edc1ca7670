// bench generate's reductions: medians, per-figure ratios, the figures of one run and the
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
  decodeSteps: 4,
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

test('engineReport: medians per thread count, raw runs kept, first run ids, the best thread count per figure', () => {
  const runs = new Map([
    [1, [run(500, 2000), run(250, 1000, [9]), run(1000, 4000)]],
    [2, [run(400, 2500), run(400, 2500)]],
  ]);
  const r = engineReport(runs, new Map([[1, 10], [2, 16]]), cost, 'M');
  const [one, two] = r.by_threads;
  assert.equal(one!.threads, 1);
  assert.equal(one!.prefill_tok_s, 200);
  assert.equal(one!.decode_tok_s, 2);
  assert.equal(one!.runs.length, 3);
  assert.equal(one!.memory_bandwidth_gb_s, 10);
  assert.equal(one!.decode_pct_of_bandwidth, 40); // 4 GB/s of 10
  assert.equal(two!.decode_tok_s, 1.6);
  assert.equal(two!.decode_pct_of_bandwidth, 20); // 3.2 GB/s of 16
  // decode is best at 1 thread, prefill at 2: each is picked on its own figure
  assert.equal(r.best_decode.threads, 1);
  assert.equal(r.best_prefill.threads, 2);
  assert.deepEqual(r.ids, [1, 2, 3, 4, 5]);
  assert.equal(r.model, 'M');
});

test('agreeingPrefix counts leading equal ids', () => {
  assert.equal(agreeingPrefix([1, 2, 3], [1, 2, 4]), 2);
  assert.equal(agreeingPrefix([1, 2], [1, 2, 3]), 2);
  assert.equal(agreeingPrefix([], [1]), 0);
});

test('the table: every engine and thread count, best against best, the bandwidth share', () => {
  const bw = new Map([[1, 6], [2, 8]]);
  const m = engineReport(new Map([[1, [run(500, 2000)]], [2, [run(250, 1600)]]]), bw, cost, 'M');
  const l = engineReport(new Map([[1, [{ ...run(1000, 1000), engine: 'llama.cpp' as const, build: 'llama-bench x', ids: [] }]], [2, [{ ...run(400, 2000), engine: 'llama.cpp' as const, build: 'llama-bench x', ids: [] }]]]), bw, cost, 'M.gguf');
  const text = formatGenerateTable({
    prompt_tokens: 100,
    gen_tokens: 5,
    reps: 1,
    decode_bytes_per_token: cost.decodeBytesPerToken,
    macs_per_token: cost.macsPerToken,
    prefill_flops: 1,
    memory_bandwidth_gb_s: 8,
    bandwidth_method: 'js-approx',
    machine: { cpu: 'Test CPU', cores: 2, load_avg_before: 3, load_avg_after: 1 },
    moesaic: m,
    competitor: { ...l, engine: 'llama.cpp', greedy_ids_agree: null },
    best_vs_best: { decode_tok_s: 2.5 / 4, prefill_tok_s: 400 / 250 },
  });
  for (const s of ['prefill tok/s', 'decode tok/s', 'ttft ms', 'peak RSS MiB', 'decode GB/s', '% of probe', 'llama-bench x', 'APPROXIMATE', 'Test CPU, 2 cores', 'OTHER WORK WAS RUNNING',
    'decode  0.63x  (2.5 tok/s at 2 threads vs 4.0 tok/s at 1 threads)', 'prefill 1.60x  (400.0 tok/s at 2 threads vs 250.0 tok/s at 2 threads)',
    'moesaic best decode: 2.50 tok/s at 2 threads, 5.00 GB/s = 62.5% of the machine\'s 8.00 GB/s', 'none to compare']) {
    assert.ok(text.includes(s), `table lacks '${s}':\n${text}`);
  }
  assert.equal(text.split('\n').filter((x) => /^\d+\s+(moesaic|llama\.cpp)\s/.test(x)).length, 4, text);
});
