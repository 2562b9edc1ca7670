import type { EpBenchResult } from './ep-bench.js';

/** The printed table of `bench ep`: one row per configuration (a markdown table, as docs/parallel.md shows). */
export function formatEpTable(r: EpBenchResult): string {
  const lines = [
    `bench ep: ${r.model}, ${r.ranks} ranks x ${r.threads_per_rank} thread(s), ${r.prompts} prompts of ${r.prompt_tokens} tokens, ${r.gen_tokens} greedy tokens each; medians of ${r.reps} run(s) after a warm-up`,
    `  single process: ${r.single_process_tok_s.toFixed(1)} tokens/s; load average ${r.load_avg[0].toFixed(1)} before, ${r.load_avg[1].toFixed(1)} after`,
    `  measured on the second half of the steps (the fitted placements learn from the first): rows max/mean = per-rank expert rows, largest over mean;`,
    `  Max Load = the largest share of one step's rows on one rank (mean over layers; 1/N = ${(1 / r.ranks).toFixed(3)} is perfect), predicted by simulate placement (EPLB: even split over copies)`,
    '',
  ];
  const head = ['configuration', 'tokens/s', 'vs 1 proc', 'rows max/mean', 'Max Load', 'predicted', 'MB exchanged', 'exchange ms', 'expert ms', 'expert MB/rank'];
  const body = r.configs.map((c) => [
    c.name,
    c.tok_s.toFixed(1),
    `${c.speedup.toFixed(2)}x`,
    c.rows_max_mean.toFixed(2),
    c.max_load.toFixed(3),
    c.predicted_max_load === null ? '-' : c.predicted_max_load.toFixed(3),
    c.mb_exchanged.toFixed(2),
    c.exchange_ms.toFixed(1),
    c.expert_ms.toFixed(1),
    c.expert_mb_per_rank.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  lines.push(line(head));
  lines.push(`| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`);
  for (const b of body) lines.push(line(b));
  return `${lines.join('\n')}\n`;
}
