import type { Figure, GenerateBenchResult } from './generate-bench.js';

/** The printed table of `bench generate`: one row per figure, medians, and moesaic / llama.cpp. */
const ROWS: readonly { key: Figure; label: string; digits: number; better: 'higher' | 'lower' }[] = [
  { key: 'prefill_tok_s', label: 'prefill tokens/s', digits: 1, better: 'higher' },
  { key: 'ttft_ms', label: 'time to first token (ms)', digits: 1, better: 'lower' },
  { key: 'decode_tok_s', label: 'decode tokens/s', digits: 2, better: 'higher' },
  { key: 'peak_rss_mib', label: 'peak resident memory (MiB)', digits: 0, better: 'lower' },
  { key: 'decode_gb_s', label: 'decode weight GB/s', digits: 2, better: 'higher' },
  { key: 'prefill_gflop_s', label: 'prefill GFLOP/s', digits: 1, better: 'higher' },
];

export function formatGenerateTable(r: GenerateBenchResult): string {
  const m = r.moesaic;
  const l = r.llama_cpp;
  const lines: string[] = [];
  lines.push(`bench generate: ${m.model}`);
  lines.push(`  ${m.prompt_tokens} prompt tokens (seeded ids, no BOS), ${m.gen_tokens} greedy tokens (EOS ignored), ${m.threads} threads, median of ${m.reps} alternating runs, each in a fresh process`);
  const mc = m.machine;
  const busy = Math.max(mc.load_avg_before, mc.load_avg_after) > mc.cores;
  lines.push(`  machine: ${mc.cpu}, ${mc.cores} cores; load average ${mc.load_avg_before.toFixed(1)} before, ${mc.load_avg_after.toFixed(1)} after${busy ? ' (OTHER WORK WAS RUNNING: timings are noisy)' : ''}`);
  lines.push(`  moesaic:   ${m.build}`);
  if (l) lines.push(`  llama.cpp: ${l.build}, on ${l.model}`);
  lines.push(`  weights read per decode token: ${(m.decode_bytes_per_token / 1e6).toFixed(2)} MB; ${(m.macs_per_token / 1e6).toFixed(2)} M weight MACs per token`);
  lines.push(`  prefill FLOPs: 2 x (weight MACs x ${m.prompt_tokens} + attention score/value MACs) = ${(m.prefill_flops / 1e9).toFixed(2)} GFLOP`);
  const how = m.bandwidth_method === 'native' ? 'native multi-threaded streaming read' : 'APPROXIMATE: JS worker threads streaming read, a lower bound';
  lines.push(`  machine memory bandwidth: ${m.memory_bandwidth_gb_s.toFixed(2)} GB/s (${how}, ${m.threads} threads)`);
  lines.push(`  moesaic decode reaches ${m.decode_pct_of_bandwidth.toFixed(1)}% of it (${m.decode_gb_s.toFixed(2)} GB/s)`);
  lines.push('');

  const head = ['figure (median)', 'moesaic', ...(l ? ['llama.cpp', 'moesaic/llama.cpp'] : [])];
  const body = ROWS.map((row) => {
    const cells = [row.label, fmt(m[row.key], row.digits)];
    if (l) {
      const ratio = r.ratio?.[row.key];
      cells.push(fmt(l[row.key], row.digits), ratio === undefined || !Number.isFinite(ratio) ? 'n/a' : `${ratio.toFixed(2)}x (${row.better} is better)`);
    }
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push(line(head));
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) lines.push(line(b));
  if (l) {
    lines.push('');
    lines.push(`  greedy ids, first repetition: the first ${l.greedy_ids_agree} of ${m.gen_tokens} agree${l.greedy_ids_agree < m.gen_tokens ? ` (moesaic ${m.ids[l.greedy_ids_agree]} vs llama.cpp ${l.ids[l.greedy_ids_agree]} at step ${l.greedy_ids_agree})` : ''}`);
    lines.push(`  moesaic   first ids: ${m.ids.slice(0, 16).join(',')}`);
    lines.push(`  llama.cpp first ids: ${l.ids.slice(0, 16).join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}
