import { basename } from 'node:path';
import type { Command } from 'commander';
import { fail } from '../../errors.js';
import { writeOutputFile } from '../../io/atomic-writer.js';
import { checkWritable } from '../../io/output-target.js';
import { PLACEMENT_POLICIES, type PlacementPolicy } from '../../parallel/placement.js';
import { CACHE_POLICIES, simulateCache, sweepCache, type CachePolicyName, type CacheStats } from '../../analysis/cache-sim.js';
import { readActivity, type TraceActivity } from '../../trace/activity.js';
import { simulatePlacement, type PlacementResult } from '../../analysis/placement-sim.js';
import { lineChartSvg } from '../../analysis/svg-chart.js';
import { choiceArg, inputFileArg, intArg, outputPathArg } from '../parse.js';

/**
 * `moesaic simulate cache|placement`: trace-driven predictions of expert buffering and expert placement
 * (techniques.md §2-3). The semantics are in analysis/cache-sim.ts and
 * analysis/placement-sim.ts; this file parses options and prints.
 */
interface CacheCli {
  trace: string;
  policy?: CachePolicyName;
  slots?: number;
  devices: number;
  placement: PlacementPolicy;
  sweep?: string;
  chart?: string;
  out?: string;
  json?: boolean;
}

interface PlacementCli {
  trace: string;
  devices: number;
  policy: PlacementPolicy | 'all';
  out?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const sim = program.command('simulate').description('trace-driven simulation of expert buffering (cache) and expert placement');
  sim
    .command('cache')
    .description('replay a routing trace through per-(device, layer) expert caches and count hits and misses')
    .requiredOption('--trace <file>', 'routing trace (.jsonl or .jsonl.gz)', inputFileArg('--trace'))
    .option('--policy <p>', `eviction policy: ${CACHE_POLICIES.join('|')}`, choiceArg('--policy', CACHE_POLICIES))
    .option('--slots <n>', 'expert slots per (device, layer) cache', intArg('--slots', 1))
    .option('--devices <D>', 'devices; experts are split over them by --placement (must divide the experts)', intArg('--devices', 1), 1)
    .option('--placement <p>', `expert placement: ${PLACEMENT_POLICIES.join('|')} (greedy/anticorr fitted on the first half of the steps)`, choiceArg('--placement', PLACEMENT_POLICIES), 'contiguous')
    .option('--sweep <a..b>', 'miss rate of every policy for slot counts a..b ("E" = experts per device)')
    .option('--chart <file>', 'with --sweep: write the miss-rate curves as SVG here', outputPathArg('--chart'))
    .option('--out <file>', 'write the report to this file (and, with --sweep, the chart next to it as .svg)', outputPathArg('--out'))
    .option('--json', 'print JSON: {"requests","hits","misses","miss_rate","per_layer"}')
    .action(async (o: CacheCli) => runCache(o));
  sim
    .command('placement')
    .description('fit an expert placement on the first half of the steps, measure Max Load and Avg Max Load on the second')
    .requiredOption('--trace <file>', 'routing trace (.jsonl or .jsonl.gz)', inputFileArg('--trace'))
    .requiredOption('--devices <D>', 'devices (must divide the experts)', intArg('--devices', 1))
    .requiredOption('--policy <p>', `${PLACEMENT_POLICIES.join('|')}, or all (text table of every policy)`, choiceArg('--policy', [...PLACEMENT_POLICIES, 'all'] as const))
    .option('--out <file>', 'write the report to this file instead of stdout', outputPathArg('--out'))
    .option('--json', 'print JSON: {"max_load","avg_max_load","per_layer"}')
    .action(async (o: PlacementCli) => runPlacement(o));
}

/** Each slot count of a sweep replays the whole trace once per policy, so a sweep is bounded. */
export const MAX_SWEEP_POINTS = 1024;

/** "a..b" (b may be "E": the experts per device) -> [a, a+1, ..., b]; perDevice undefined checks the form only. */
export function parseSweep(value: string, perDevice?: number): number[] {
  const m = /^\s*(\d+)\s*\.\.\s*(\d+|E)\s*$/.exec(value);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? (m[2] === 'E' ? (perDevice ?? lo) : Number(m[2])) : NaN;
  if (!m || lo < 1 || hi < lo) fail('E_BAD_OPTION', `--sweep must be a range a..b with 1 <= a <= b (b may be E), got '${value}'`);
  if (hi - lo + 1 > MAX_SWEEP_POINTS) {
    fail('E_BAD_OPTION', `--sweep ${value} asks for ${hi - lo + 1} slot counts; at most ${MAX_SWEEP_POINTS} (each replays the trace under every policy)`);
  }
  return perDevice === undefined ? [] : Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** --chart, else the chart beside --out (same name, .svg). */
function sweepChartPath(o: CacheCli): string | undefined {
  return o.chart ?? (o.out !== undefined ? o.out.replace(/\.[^./]*$/, '') + '.svg' : undefined);
}

function emit(text: string, out?: string): void {
  if (out === undefined) {
    process.stdout.write(text);
    return;
  }
  writeOutputFile(out, text, `--out ${out}`);
  process.stdout.write(`wrote ${out}\n`);
}

function describe(a: TraceActivity, path: string): string {
  const h = a.header;
  const steps = Math.max(0, ...a.layers.map((l) => l.steps.length));
  return `trace ${path}: model "${h.model}", ${h.num_experts} experts, top-${h.top_k}, ${h.moe_layers.length} MoE layers, ${steps} steps\n`;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

function cacheRow(name: string, s: CacheStats): string {
  return `${name.padEnd(8)} ${String(s.requests).padStart(10)} ${String(s.hits).padStart(10)} ${String(s.misses).padStart(10)} ${pct(s.miss_rate).padStart(9)}\n`;
}

async function runCache(o: CacheCli): Promise<void> {
  if (o.sweep !== undefined) {
    parseSweep(o.sweep); // a malformed range fails before the (long) read
    if (o.policy !== undefined || o.slots !== undefined) fail('E_BAD_OPTION', '--sweep runs every policy over a range of slots: drop --policy and --slots');
    const chart = sweepChartPath(o);
    if (chart !== undefined && o.chart === undefined) checkWritable(chart, 'file', `chart ${chart}`); // derived from --out
  } else if (o.policy === undefined || o.slots === undefined) fail('E_BAD_OPTION', 'simulate cache needs --policy and --slots (or --sweep a..b)');
  else if (o.chart !== undefined) fail('E_BAD_OPTION', '--chart draws the miss-rate curves of --sweep: add --sweep a..b');
  const t0 = performance.now();
  const activity = await readActivity(o.trace);
  const t1 = performance.now();
  const E = activity.header.num_experts;
  if (E % o.devices !== 0) fail('E_BAD_OPTION', `--devices must divide the number of experts (${E}), got ${o.devices}`);
  if (o.sweep !== undefined) return runSweep(o, activity, parseSweep(o.sweep, E / o.devices), t1 - t0);
  const r = simulateCache(activity, { policy: o.policy!, slots: o.slots!, devices: o.devices, placement: o.placement });
  const t2 = performance.now();
  if (o.json) {
    emit(JSON.stringify({ requests: r.requests, hits: r.hits, misses: r.misses, miss_rate: r.miss_rate, per_layer: r.per_layer }) + '\n', o.out);
    return;
  }
  let text = describe(activity, o.trace);
  text += `policy ${o.policy}, ${o.slots} slots per (device, layer), ${o.devices} device(s)${o.devices > 1 ? `, placement ${o.placement}` : ''}\n`;
  text += `${'layer'.padEnd(8)} ${'requests'.padStart(10)} ${'hits'.padStart(10)} ${'misses'.padStart(10)} ${'miss rate'.padStart(9)}\n`;
  for (const [layer, s] of Object.entries(r.per_layer)) text += cacheRow(layer, s);
  text += cacheRow('total', r);
  text += `time: read ${((t1 - t0) / 1000).toFixed(2)} s, simulate ${((t2 - t1) / 1000).toFixed(2)} s\n`;
  emit(text, o.out);
}

function runSweep(o: CacheCli, activity: TraceActivity, slots: number[], readMs: number): void {
  const t1 = performance.now();
  const curves = sweepCache(activity, slots, o.devices, o.placement);
  const simMs = performance.now() - t1;
  const chartPath = sweepChartPath(o);
  if (chartPath !== undefined) {
    const h = activity.header;
    const svg = lineChartSvg({
      title: `Expert cache miss rate: ${basename(o.trace)}, E=${h.num_experts}, k=${h.top_k}${o.devices > 1 ? `, ${o.devices} devices (${o.placement})` : ''}`,
      xLabel: 'slots per (device, layer)',
      yLabel: 'miss rate',
      series: CACHE_POLICIES.map((p) => ({ name: p, points: slots.map((n, j): [number, number] => [n, curves[p][j].miss_rate]) })),
    });
    writeOutputFile(chartPath, svg, `chart ${chartPath}`);
  }
  if (o.json) {
    const miss_rate = Object.fromEntries(CACHE_POLICIES.map((p) => [p, curves[p].map((s) => s.miss_rate)]));
    emit(JSON.stringify({ slots, miss_rate }) + '\n', o.out);
  } else {
    let text = describe(activity, o.trace);
    text += `miss rate by slots per (device, layer), ${o.devices} device(s)${o.devices > 1 ? `, placement ${o.placement}` : ''}\n`;
    text += 'slots' + CACHE_POLICIES.map((p) => p.padStart(9)).join('') + '\n';
    slots.forEach((n, j) => {
      text += String(n).padStart(5) + CACHE_POLICIES.map((p) => pct(curves[p][j].miss_rate).padStart(9)).join('') + '\n';
    });
    text += `time: read ${(readMs / 1000).toFixed(2)} s, simulate ${(simMs / 1000).toFixed(2)} s\n`;
    emit(text, o.out);
  }
  if (chartPath !== undefined && !o.json) process.stdout.write(`wrote chart ${chartPath}\n`);
}

async function runPlacement(o: PlacementCli): Promise<void> {
  const activity = await readActivity(o.trace);
  const policies = o.policy === 'all' ? [...PLACEMENT_POLICIES] : [o.policy];
  const results = policies.map((p) => [p, simulatePlacement(activity, o.devices, p)] as [PlacementPolicy, PlacementResult]);
  if (o.json) {
    const shape = (r: PlacementResult) => ({ max_load: r.max_load, avg_max_load: r.avg_max_load, per_layer: r.per_layer });
    const body = o.policy === 'all' ? Object.fromEntries(results.map(([p, r]) => [p, shape(r)])) : shape(results[0][1]);
    emit(JSON.stringify(body) + '\n', o.out);
    return;
  }
  let text = describe(activity, o.trace);
  text += `${o.devices} devices, ${activity.header.num_experts / o.devices} experts each; fit on the first half of the steps, measured on the second\n`;
  text += 'policy       max load  avg max load\n';
  for (const [p, r] of results) text += `${p.padEnd(12)} ${r.max_load.toFixed(4).padStart(8)}  ${r.avg_max_load.toFixed(4).padStart(12)}\n`;
  if (results.length === 1) {
    text += '\nlayer    max load  avg max load\n';
    for (const [layer, m] of Object.entries(results[0][1].per_layer)) {
      text += `${layer.padEnd(8)} ${m.max_load.toFixed(4).padStart(8)}  ${m.avg_max_load.toFixed(4).padStart(12)}\n`;
    }
  }
  emit(text, o.out);
}
