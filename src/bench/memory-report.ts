import type { MemoryBenchResult, SettingReport } from './memory-bench.js';

/** The printed table of `bench memory`: one row per setting, medians, ratio to the mmap baseline. */
export function formatMemoryTable(r: MemoryBenchResult): string {
  const lines: string[] = [];
  const mc = r.machine;
  const busy = Math.max(mc.load_avg_before, mc.load_avg_after) > mc.cores;
  lines.push(`bench memory: ${r.model}`);
  lines.push(`  experts ${r.expert_mib.toFixed(1)} MiB, other weights ${r.non_expert_mib.toFixed(1)} MiB; memory limit = other weights + cache + ${r.headroom_mib.toFixed(0)} MiB headroom`);
  lines.push(`  ${r.prompt_tokens} prompt tokens, ${r.gen_tokens} greedy tokens, ${r.threads} threads, median of ${r.reps} runs per setting, each a fresh process with the model dropped from the page cache`);
  lines.push(`  machine: ${mc.cpu}, ${mc.cores} cores; load average ${mc.load_avg_before.toFixed(1)} before, ${mc.load_avg_after.toFixed(1)} after${busy ? ' (OTHER WORK WAS RUNNING: timings are noisy)' : ''}`);
  if (r.baseline_unavailable) lines.push(`  NO mmap baseline and no memory limits: ${r.baseline_unavailable}`);
  lines.push('');
  const head = ['budget', 'setting', 'limit MiB', 'prefill t/s', 'decode t/s', 'TTFT ms', 'stall', 'peak RSS', 'cgroup peak', 'miss rate', 'simulated', 'prec/recall', 'read GB/s', 'vs mmap', 'ids'];
  const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(1)}%`);
  const num = (x: number | undefined, d: number) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  const body = r.settings.map((s: SettingReport) => [
    `${(100 * s.budget).toFixed(0)}%`,
    s.mode === 'mmap' ? 'mmap (page cache)' : `${s.policy} + ${s.prefetch}${s.slots_per_layer ? ` (${s.slots_per_layer} slots)` : ''}`,
    num(s.limit_mib ?? undefined, 0),
    num(s.prefill_tok_s, 1),
    num(s.decode_tok_s, 2),
    num(s.ttft_ms, 0),
    pct(s.stall_share),
    num(s.peak_rss_mib, 0),
    num(s.cgroup_peak_mib, 0),
    pct(s.miss_rate),
    pct(s.sim_miss_rate),
    s.prefetch_precision === undefined ? '-' : `${pct(s.prefetch_precision)}/${pct(s.prefetch_recall)}`,
    num(s.read_gb_s, 2),
    s.decode_vs_mmap === undefined ? '-' : `${s.decode_vs_mmap.toFixed(2)}x`,
    `${s.ids_agree ? 'same' : 'DIFFER'}${s.killed ? `, ${s.killed} killed` : ''}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push(line(head));
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) lines.push(line(b));
  lines.push('');
  lines.push('  stall = share of prefill + decode time waiting for expert reads; simulated = `simulate cache` on the run\'s own trace (same policy and slots; equal to the miss rate without prefetch)');
  return `${lines.join('\n')}\n`;
}
