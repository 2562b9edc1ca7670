import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, MoesaicError } from '../errors.js';
import { writeOutputFile } from '../io/atomic-writer.js';
import type { TraceAnalysis } from './analyze.js';
import { barChartSvg, heatmapSvg } from './svg-chart.js';

/**
 * Presentation of a TraceAnalysis: the text summary, the JSON document and the charts that
 * `moesaic analyze` writes. Kept apart from the analysis so the library API returns numbers only.
 */

function f(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined ? '-' : v.toFixed(digits);
}

/**
 * JSON text of the analysis. Correlations are rounded to 4 decimals: the matrix is layers x E^2 numbers,
 * and more digits would only make the file larger (a trace's sampling error is far bigger).
 */
export function analysisJson(a: TraceAnalysis): string {
  const layers = a.layers.map((l) => ({ ...l, correlation: l.correlation?.map((row) => row.map((r) => Math.round(r * 1e4) / 1e4)) ?? null }));
  return JSON.stringify({ ...a, layers }) + '\n';
}

/** The per-layer table, then the most correlated pairs, then means over layers. */
export function formatAnalysisText(a: TraceAnalysis, path: string): string {
  const E = a.num_experts;
  const lines = [
    `trace ${path}: model ${a.model}, ${E} experts, top-${a.top_k}, ${a.layers.length} MoE layers, ${a.steps} steps`,
    '',
    'layer   steps   tokens  max/mean   gini  inactive mean [min,max]  locality (indep.)  hottest experts (share)',
  ];
  for (const l of a.layers) {
    const hottest = l.popularity
      .map((p, e) => [e, p] as const)
      .sort((x, y) => y[1] - x[1] || x[0] - y[0])
      .slice(0, 3)
      .filter(([, p]) => p > 0)
      .map(([e, p]) => `${e} (${(100 * p).toFixed(1)}%)`)
      .join(', ');
    const inactive = l.inactive ? `${f(l.inactive.mean, 2)} [${l.inactive.min},${l.inactive.max}]` : '-';
    lines.push(
      `${String(l.layer).padStart(5)} ${String(l.steps).padStart(7)} ${String(l.tokens).padStart(8)} ${f(l.max_over_mean, 2).padStart(9)} ` +
        `${f(l.gini).padStart(6)}  ${inactive.padEnd(23)} ${f(l.locality).padStart(8)} (${f(l.active_fraction)})  ${hottest || '-'}`,
    );
  }
  lines.push('', 'most correlated expert pairs (Pearson r of per-step shares):');
  if (a.layers.some((l) => l.correlation === null)) lines.push(`  (the full correlation matrix is left out at ${E} experts; the top pairs are exact)`);
  for (const l of a.layers) {
    const pairs = l.top_pairs.map((p) => `${p.a}-${p.b} r=${f(p.r)}`).join(', ');
    lines.push(`  layer ${l.layer}: ${pairs || 'none with r > 0'}`);
  }
  const s = a.summary;
  lines.push(
    '',
    `mean over layers: max/mean ${f(s.max_over_mean, 2)}, gini ${f(s.gini)}, inactive experts ${f(s.inactive_mean, 2)} of ${E}, locality ${f(s.locality)}`,
  );
  return lines.join('\n') + '\n';
}

/**
 * Writes analysis.json, popularity.svg (heatmap, layer x expert) and inactive.svg (mean inactive experts
 * per layer, like the inactive-experts figure of Huang et al.) into `dir`, creating it; returns the paths.
 */
export async function writeAnalysisFiles(a: TraceAnalysis, dir: string): Promise<string[]> {
  const files: Array<[string, string]> = [
    ['analysis.json', analysisJson(a)],
    [
      'popularity.svg',
      heatmapSvg({
        title: `Expert popularity (share of assignments), ${a.model}`,
        xLabel: 'expert',
        yLabel: 'MoE layer',
        rows: a.layers.map((l) => l.popularity),
        rowLabels: a.layers.map((l) => String(l.layer)),
      }),
    ],
    [
      'inactive.svg',
      barChartSvg({
        title: `Inactive experts per step (mean of ${a.num_experts}), ${a.model}`,
        xLabel: 'MoE layer',
        yLabel: 'inactive experts per step',
        labels: a.layers.map((l) => String(l.layer)),
        values: a.layers.map((l) => l.inactive?.mean ?? NaN),
      }),
    ],
  ];
  try {
    await mkdir(dir, { recursive: true });
    for (const [name, text] of files) writeOutputFile(join(dir, name), text, `--out ${join(dir, name)}`);
  } catch (e) {
    if (e instanceof MoesaicError) throw e;
    fail('E_IO', `cannot write the analysis into --out ${dir}: ${(e as Error).message}`);
  }
  return files.map(([name]) => join(dir, name));
}
