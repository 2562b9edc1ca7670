import type { EngineReport, GenerateBenchResult, ThreadsReport } from './generate-bench.js';

/**
 * The printed table of `bench generate`: one row per engine and thread count (medians), then the
 * best-against-best ratios and how close moesaic's decode comes to the machine's bandwidth.
 */
export function formatGenerateTable(r: GenerateBenchResult): string {
  const m = r.moesaic;
  const c = r.competitor;
  const lines: string[] = [];
  lines.push(`bench generate: ${m.model}`);
  lines.push(`  ${r.prompt_tokens} prompt tokens (seeded ids, no BOS), ${r.gen_tokens} greedy tokens (EOS ignored); median of ${r.reps} runs per engine and thread count, alternating, each in a fresh process`);
  const mc = r.machine;
  const busy = Math.max(mc.load_avg_before, mc.load_avg_after) > mc.cores;
  lines.push(`  machine: ${mc.cpu}, ${mc.cores} cores; load average ${mc.load_avg_before.toFixed(1)} before, ${mc.load_avg_after.toFixed(1)} after${busy ? ' (OTHER WORK WAS RUNNING: timings are noisy)' : ''}`);
  lines.push(`  moesaic:   ${m.build}`);
  if (c) lines.push(`  ${c.engine}: ${c.build}, on ${c.model}`);
  lines.push(`  weights read per decode token: ${(r.decode_bytes_per_token / 1e6).toFixed(2)} MB; ${(r.macs_per_token / 1e6).toFixed(2)} M weight MACs per token`);
  lines.push(`  prefill FLOPs: 2 x (weight MACs x ${r.prompt_tokens} + attention score/value MACs) = ${(r.prefill_flops / 1e9).toFixed(2)} GFLOP`);
  const how = r.bandwidth_method === 'native' ? 'native multi-threaded streaming read' : 'APPROXIMATE: JS worker threads streaming read, a lower bound';
  lines.push(`  machine memory bandwidth: ${r.memory_bandwidth_gb_s.toFixed(2)} GB/s (best probe of the sweep; ${how})`);
  lines.push('');

  const head = ['threads', 'engine', 'prefill tok/s', 'ttft ms', 'decode tok/s', 'decode GB/s', '% of probe', 'peak RSS MiB'];
  const row = (name: string, t: ThreadsReport) => [
    String(t.threads), name, fmt(t.prefill_tok_s, 1), fmt(t.ttft_ms, 1), fmt(t.decode_tok_s, 2), fmt(t.decode_gb_s, 2), fmt(t.decode_pct_of_bandwidth, 1), fmt(t.peak_rss_mib, 0),
  ];
  const body: string[][] = [];
  m.by_threads.forEach((t, i) => {
    body.push(row('moesaic', t));
    if (c) body.push(row(c.engine, c.by_threads[i]!));
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((x, i) => (i < 2 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  lines.push(line(head));
  lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) lines.push(line(b));
  lines.push('');

  const pct = (100 * m.best_decode.decode_gb_s) / r.memory_bandwidth_gb_s;
  lines.push(`moesaic best decode: ${fmt(m.best_decode.decode_tok_s, 2)} tok/s at ${m.best_decode.threads} threads, ${fmt(m.best_decode.decode_gb_s, 2)} GB/s = ${fmt(pct, 1)}% of the machine's ${r.memory_bandwidth_gb_s.toFixed(2)} GB/s`);
  if (c && r.best_vs_best) {
    lines.push(`best against best, moesaic / ${c.engine}:`);
    lines.push(`  decode  ${ratio(r.best_vs_best.decode_tok_s)}  (${best(m, 'decode_tok_s')} vs ${best(c, 'decode_tok_s')})`);
    lines.push(`  prefill ${ratio(r.best_vs_best.prefill_tok_s)}  (${best(m, 'prefill_tok_s')} vs ${best(c, 'prefill_tok_s')})`);
    if (c.greedy_ids_agree === null) lines.push(`  greedy ids: ${c.engine} decodes without sampling, so there are none to compare`);
    else {
      const n = c.greedy_ids_agree;
      lines.push(`  greedy ids, first run: the first ${n} of ${r.gen_tokens} agree${n < r.gen_tokens ? ` (moesaic ${m.ids[n]} vs ${c.engine} ${c.ids[n]} at step ${n})` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function best(e: EngineReport, key: 'decode_tok_s' | 'prefill_tok_s'): string {
  const t = key === 'decode_tok_s' ? e.best_decode : e.best_prefill;
  return `${fmt(t[key], 1)} tok/s at ${t.threads} threads`;
}

function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a';
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}
