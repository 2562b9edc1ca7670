// `bench memory` pieces that need no model: the cgroup check says why it cannot run, the table and
// charts show what was measured (killed runs, differing ids, missing baseline) rather than hiding it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupUnavailable } from '../../src/bench/memory-cgroup.js';
import type { MemoryBenchResult, SettingReport } from '../../src/bench/memory-bench.js';
import { formatMemoryTable } from '../../src/bench/memory-report.js';
import { memoryChartSvg } from '../../src/cli/bench/memory.js';

test('no cgroup v1 memory controller: a clear reason, no exception', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-nocg-'));
  try {
    assert.match(cgroupUnavailable(dir)!, /no cgroup v1 memory controller at .*moesaic-nocg-/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const row = (o: Partial<SettingReport>): SettingReport => ({
  budget: 0.25,
  mode: 'buffered',
  policy: 'lifo',
  prefetch: 'none',
  limit_mib: 600,
  prefill_tok_s: 10,
  decode_tok_s: 8,
  ttft_ms: 100,
  peak_rss_mib: 500,
  killed: 0,
  ids_agree: true,
  ...o,
});

test('the table shows ratios, killed runs, differing ids and a missing baseline', () => {
  const r: MemoryBenchResult = {
    model: '/m',
    expert_mib: 1536,
    non_expert_mib: 52,
    headroom_mib: 200,
    prompt_tokens: 16,
    gen_tokens: 32,
    reps: 3,
    threads: 2,
    baseline_unavailable: null,
    machine: { cpu: 'x', cores: 2, load_avg_before: 1, load_avg_after: 1 },
    settings: [
      row({ miss_rate: 0.5, sim_miss_rate: 0.5, decode_vs_mmap: 2.5, slots_per_layer: 8 }),
      row({ prefetch: 'pregate', prefetch_precision: 0.8, prefetch_recall: 0.7, ids_agree: false }),
      row({ mode: 'mmap', policy: undefined, prefetch: undefined, decode_tok_s: 3.2, killed: 2 }),
    ],
  };
  const t = formatMemoryTable(r);
  assert.match(t, /lifo \+ none \(8 slots\)/);
  assert.match(t, /2\.50x/);
  assert.match(t, /80\.0%\/70\.0%/);
  assert.match(t, /DIFFER/);
  assert.match(t, /mmap \(page cache\).*2 killed/);
  assert.doesNotMatch(t, /NO mmap baseline/);
  assert.match(formatMemoryTable({ ...r, baseline_unavailable: 'no cgroup v1 memory controller at /x' }), /NO mmap baseline and no memory limits: no cgroup v1/);
  const { speed, misses } = memoryChartSvg(r);
  assert.match(speed, /<svg /);
  assert.match(speed, /mmap in cgroup/);
  assert.doesNotMatch(misses, /mmap in cgroup/); // the baseline has no miss rate
});
