import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { fail, showValue } from '../../errors.js';
import { inputFileArg, intArg } from '../parse.js';
import { rebalanceExperts, type EplbResult } from '../../parallel/eplb.js';

/**
 * `moesaic eplb`: DeepSeek's expert-parallelism load balancer (techniques.md §3) on a file of per-layer
 * expert loads, printing each layer's replica plan and the GPU load balance before and after.
 */
export function register(program: Command): void {
  program
    .command('eplb')
    .description("plan redundant expert replicas and their GPUs with DeepSeek's EPLB (hierarchical when groups % nodes == 0)")
    .requiredOption('--weights <file>', 'JSON expert loads: [[layer 0 loads...], ...], {"weights": [[...]]}, or an analysis.json from moesaic analyze', inputFileArg('--weights'))
    .requiredOption('--replicas <n>', 'physical expert slots in total (multiple of --gpus, >= experts)', intArg('--replicas', 1, 1 << 20))
    .requiredOption('--groups <n>', 'expert groups (must divide the experts)', intArg('--groups', 1, 1 << 20))
    .requiredOption('--nodes <n>', 'server nodes (must divide --gpus)', intArg('--nodes', 1, 1 << 16))
    .requiredOption('--gpus <n>', 'GPUs in total', intArg('--gpus', 1, 1 << 20))
    .option('--json', 'print the whole plan as JSON')
    .action(async (o: { weights: string; replicas: number; groups: number; nodes: number; gpus: number; json?: boolean }) => {
      const weights = await readWeights(o.weights);
      const result = rebalanceExperts(weights, { replicas: o.replicas, groups: o.groups, nodes: o.nodes, gpus: o.gpus });
      process.stdout.write(o.json ? JSON.stringify(result) + '\n' : formatText(result));
    });
}

/** Reads and checks the loads file; errors name the file and the layer/expert at fault. */
export async function readWeights(path: string): Promise<number[][]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    fail('E_IO', `cannot read --weights file ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    fail('E_BAD_INPUT', `--weights file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const rows = Array.isArray(data) ? data : loadsOf(data);
  if (!Array.isArray(rows) || rows.length === 0) {
    fail(
      'E_BAD_INPUT',
      `--weights file ${path} must hold a non-empty array of layers: [[loads...], ...], {"weights": [[...]]} or an analysis.json`,
    );
  }
  return rows.map((row: unknown, l: number) => {
    if (!Array.isArray(row) || row.length === 0) fail('E_BAD_INPUT', `--weights file ${path}: layer ${l} must be a non-empty array of loads`);
    if (row.length !== (rows[0] as unknown[]).length) {
      fail('E_BAD_INPUT', `--weights file ${path}: layer ${l} has ${row.length} expert loads, layer 0 has ${(rows[0] as unknown[]).length}`);
    }
    return row.map((x: unknown, m: number) => {
      if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
        fail('E_BAD_INPUT', `--weights file ${path}: layer ${l}, expert ${m}: load must be a number >= 0, got ${showValue(x)}`);
      }
      return x;
    });
  });
}

/** {"weights": [...]} or `moesaic analyze`'s analysis.json ({"layers": [{"popularity": [...]}, ...]}). */
function loadsOf(data: unknown): unknown {
  const o = data as { weights?: unknown; layers?: unknown } | null;
  if (o === null || typeof o !== 'object') return undefined;
  if (o.weights !== undefined) return o.weights;
  if (Array.isArray(o.layers)) return o.layers.map((l: unknown) => (l as { popularity?: unknown } | null)?.popularity);
  return undefined;
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(6)));
}

function formatText(r: EplbResult): string {
  const lines = [`EPLB mode: ${r.mode}`];
  r.layers.forEach((l, i) => {
    lines.push(
      `layer ${i}: GPU load max/mean ${fmt(l.before.imbalance)} -> ${fmt(l.after.imbalance)} ` +
        `(max ${fmt(l.before.max)} -> ${fmt(l.after.max)}, mean ${fmt(l.after.mean)})`,
    );
    lines.push(`  ${JSON.stringify({ phy2log: l.phy2log, log2phy: l.log2phy, logcnt: l.logcnt })}`);
  });
  lines.push(`mean max/mean over layers: ${fmt(r.mean_imbalance_before)} -> ${fmt(r.mean_imbalance_after)}`);
  return lines.join('\n') + '\n';
}
