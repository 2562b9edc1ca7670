import type { Command } from 'commander';
import { fail } from '../../errors.js';
import { writeOutputFile } from '../../io/atomic-writer.js';
import { addRunOptions } from '../../options/run-options.js';
import type { GatingResult, GatingTarget } from '../../bench/gating-study.js';
import { dynamicOverStatic, layerTarget, modelTarget, sweep } from '../../bench/gating-study.js';
import { weightSetCount } from '../../bench/gating-layer.js';
import { DISPATCH_POLICY_NAMES } from '../../moe/policies.js';
import { softmaxTopKRouter } from '../../moe/router-softmax-topk.js';
import { routerForConfig } from '../../moe/routers.js';
import { parseConfig } from '../../model/config.js';
import type { BackendName } from '../../tensor/backends.js';
import { getBackend } from '../../tensor/backends.js';
import { lineChartSvg } from '../../analysis/svg-chart.js';
import { choiceArg, floatArg, idListArg, intArg, outputPathArg } from '../parse.js';

/**
 * The paper's setups (Huang et al., arXiv 2303.06182, §5) with the expert count, top-k and capacity
 * fraction kept and the widths scaled down so one layer's experts fit this machine's memory and a
 * sweep runs in minutes on 2 cores. `scaled` is printed with every run.
 */
const PRESETS = {
  lm: {
    hidden: 128, ffn: 512, experts: 512, topK: 2, capacityFactor: 0.05, skew: 0.5,
    batches: [256, 512, 1024, 2048, 4096, 8192], memoryLimitMb: 1024,
    scaled: 'LM preset: 512 experts, top-2, C = 0.05 as in the paper; d_model 1024 -> 128 and d_ffn 4096 -> 512 (1/8); one MoE layer instead of 12 (every 2nd of 24); batch = tokens per forward; a 1 GiB activation limit stands in for the GPU memory that capped the paper\'s batch sizes',
  },
  'lm-paper': {
    hidden: 1024, ffn: 4096, experts: 512, topK: 2, capacityFactor: 0.05, skew: 0.5, weightSets: 8,
    batches: [64, 128, 256, 512, 1024], memoryLimitMb: 2048,
    scaled: 'LM preset at the paper\'s widths: d_model 1024, d_ffn 4096, 512 experts, top-2, C = 0.05; the 512 experts cycle through 8 distinct f32 weight sets of 50 MB each (26 GB would not fit; each set is larger than the last-level cache, so every expert product still streams its weights from memory); one MoE layer instead of 12; a 2 GiB activation limit',
  },
  mt: {
    hidden: 128, ffn: 512, experts: 128, topK: 2, capacityFactor: 1, skew: 0.5,
    batches: [64, 128, 256, 512, 1024, 2048], memoryLimitMb: 1024,
    scaled: 'MT preset: 128 experts, top-2, C = 1 as in the paper (NLLB-200 MoE); d_model 2048 -> 128 and d_ffn 8192 -> 512 (1/16); one MoE layer instead of 12 (every 4th of 48); batch = tokens per forward; a 1 GiB activation limit stands in for the GPU memory',
  },
} as const;
type PresetName = keyof typeof PRESETS;

interface GatingOpts {
  model?: string;
  preset?: PresetName;
  hidden?: number;
  ffn?: number;
  experts?: number;
  topK?: number;
  skew?: number;
  batches?: number[];
  policies?: string;
  capacityFactor?: number;
  blockSize?: number;
  repeat: number;
  memoryLimitMb?: number;
  router?: string;
  backend: BackendName;
  threads?: number;
  seed: number;
  json?: boolean;
  out?: string;
  svg?: string;
}

/** `moesaic bench gating`: the dynamic-gating study, every dispatch policy side by side. */
export function register(bench: Command): void {
  bench
    .command('gating')
    .description('dispatch policies side by side over a batch-size sweep: tokens/s, activation memory, drops, padding')
    .option('--model <dir>', 'run a checkpoint (full forward) instead of a synthetic MoE layer')
    .option('--preset <name>', 'paper setup: lm (512 experts, top-2, C 0.05, widths 1/8) | lm-paper (the same at the paper\'s widths, d_ffn 4096) | mt (128 experts, top-2, C 1, widths 1/16)', choiceArg('--preset', ['lm', 'lm-paper', 'mt'] as const))
    .option('--hidden <n>', 'synthetic layer: hidden size (default 128)', intArg('--hidden', 2, 65536))
    .option('--ffn <n>', 'synthetic layer: expert FFN width (default 512)', intArg('--ffn', 1, 262144))
    .option('--experts <n>', 'synthetic layer: experts (default 64)', intArg('--experts', 1, 4096))
    .option('--top-k <n>', 'synthetic layer: experts per token (default 2)', intArg('--top-k', 1, 64))
    .option('--skew <x>', 'synthetic layer: routing skew, Zipf exponent of expert popularity (default 1; presets 0.5)', floatArg('--skew', 0, 100))
    .option('--batches <csv>', 'batch sizes in tokens, e.g. 64,256,1024', idListArg('--batches'))
    .option('--policies <csv>', `policies to compare (default all: ${DISPATCH_POLICY_NAMES.join(',')})`)
    .option('--repeat <n>', 'timed runs per policy and batch, median reported', intArg('--repeat', 1, 1000), 3)
    .option('--memory-limit-mb <n>', 'report a policy as OOM instead of running it when its activation memory exceeds this (synthetic layer)', floatArg('--memory-limit-mb', 1e-3))
    .option('--seed <n>', 'seed of the synthetic weights and inputs', intArg('--seed', 0), 0)
    .option('--json', 'print {"results": [...]} instead of the table')
    .option('--out <file>', 'also write the JSON to this file', outputPathArg('--out'))
    .option('--svg <file>', 'write the throughput-vs-batch chart (one series per policy) as SVG', outputPathArg('--svg'));
  // the run-time options this bench takes, from the one schema (it sweeps the gating policies itself);
  // without --router a synthetic layer uses softmax-topk-norm, a checkpoint its own
  addRunOptions(bench.commands[bench.commands.length - 1]!, { keys: ['capacityFactor', 'blockSize', 'router', 'backend', 'threads'] })
    .action(async (o: GatingOpts) => {
      const log = (s: string) => (o.json ? process.stderr : process.stdout).write(`${s}\n`);
      const preset = o.preset ? PRESETS[o.preset] : undefined;
      if (o.model && (o.preset || o.hidden || o.ffn || o.experts || o.topK || o.skew !== undefined)) {
        fail('E_BAD_OPTION', '--model runs the checkpoint as it is: drop --preset/--hidden/--ffn/--experts/--top-k/--skew');
      }
      const policies = o.policies ? o.policies.split(',').map((p) => p.trim()) : [...DISPATCH_POLICY_NAMES];
      for (const p of policies) choiceArg('--policies', DISPATCH_POLICY_NAMES)(p);
      const capacityFactor = o.capacityFactor ?? preset?.capacityFactor ?? 1;
      const batches = o.batches ?? [...(preset?.batches ?? [64, 128, 256, 512, 1024])];
      if (batches.some((b) => b < 1 || b > 1_000_000)) fail('E_BAD_OPTION', '--batches must be token counts in [1, 1000000]');
      const limitMb = o.memoryLimitMb ?? preset?.memoryLimitMb;

      let target: GatingTarget;
      if (o.model) {
        target = modelTarget(o.model, o.backend, o.threads, capacityFactor, o.router);
      } else {
        const spec = {
          hidden: o.hidden ?? preset?.hidden ?? 128,
          ffn: o.ffn ?? preset?.ffn ?? 512,
          experts: o.experts ?? preset?.experts ?? 64,
          topK: o.topK ?? preset?.topK ?? 2,
          skew: o.skew ?? preset?.skew ?? 1,
          seed: o.seed,
          weightSets: preset && 'weightSets' in preset ? preset.weightSets : undefined,
        };
        if (spec.topK > spec.experts) fail('E_BAD_OPTION', `--top-k ${spec.topK} exceeds --experts ${spec.experts}`);
        // the synthetic layer's weights live in memory: refuse shapes this machine cannot hold
        const weightBytes = 4 * 3 * weightSetCount(spec) * spec.hidden * spec.ffn;
        if (weightBytes > 8 * 2 ** 30) {
          fail('E_BAD_OPTION', `a synthetic layer of ${spec.experts} experts x ${spec.hidden} x ${spec.ffn} needs ${(weightBytes / 2 ** 30).toFixed(0)} GiB of f32 weights (limit 8 GiB): reduce --experts, --hidden or --ffn`);
        }
        const backend = await getBackend(o.backend, o.threads);
        const router = o.router ? routerForConfig(syntheticConfig(spec), o.router) : softmaxTopKRouter(true);
        target = layerTarget(spec, backend, router, { capacityFactor, blockSize: o.blockSize ?? 16 });
      }
      if (preset) log(`# scaled: ${preset.scaled}`);
      log(`# ${target.description}; backend ${o.backend}; static C = ${capacityFactor}; megablocks block ${o.blockSize ?? 16}; median of ${o.repeat}${limitMb ? `; memory limit ${limitMb} MiB` : ''}`);

      const results = await sweep(target, {
        policies,
        batches,
        repeat: o.repeat,
        memoryLimitBytes: limitMb ? limitMb * 2 ** 20 : Infinity,
        onProgress: (m) => process.stderr.write(`bench gating: ${m}\n`),
      });
      const json = `${JSON.stringify({ results, dynamic_over_static: dynamicOverStatic(results) }, null, 1)}\n`;
      if (o.out) writeOutputFile(o.out, json, `--out ${o.out}`);
      if (o.svg) writeOutputFile(o.svg, chart(results, o.preset ? `${o.preset.toUpperCase()} preset, scaled` : target.description.split(':')[0]!));
      if (o.json) process.stdout.write(json);
      else {
        log(table(results));
        for (const line of summary(results)) log(line);
      }
    });
}

/** A config for routers that read one (sigmoid-group, xmoe-cosine) when the layer is synthetic. */
function syntheticConfig(spec: { hidden: number; experts: number; topK: number; ffn: number }) {
  return parseConfig({ model_type: 'mixtral', hidden_size: spec.hidden, num_hidden_layers: 1, num_attention_heads: 1, num_local_experts: spec.experts, num_experts_per_tok: spec.topK, intermediate_size: spec.ffn, vocab_size: 2, head_dim: 2, num_key_value_heads: 1 });
}

const MB = 2 ** 20;

function table(results: readonly GatingResult[]): string {
  const head = ['batch', 'policy', 'tokens/s', 'peak act MiB', 'dropped', 'padded', 'gate ms', 'order ms', 'expert ms', 'combine ms'];
  const rows = results.map((r) => [
    String(r.batch),
    r.policy,
    r.oom ? 'OOM' : r.tokens_per_s!.toFixed(0),
    (r.peak_activation_bytes / MB).toFixed(2),
    r.oom ? '-' : String(r.dropped),
    r.oom ? '-' : String(r.padded),
    ...(['gate', 'order', 'expert', 'combine'] as const).map((m) => (r.oom ? '-' : r.times_ms[m].toFixed(2))),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i < 2 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Dynamic vs static at every batch (the paper's two comparisons: throughput and memory). */
function summary(results: readonly GatingResult[]): string[] {
  const out: string[] = [];
  const ratios = dynamicOverStatic(results);
  const tput = ratios.map((r) => `${r.batch}: ${r.throughput === null ? 'static OOM' : `${r.throughput.toFixed(2)}x`}`);
  if (ratios.length > 0) out.push(`dynamic / static throughput by batch: ${tput.join(', ')} (paper: 6.21x LM, 5.75x MT encoder)`);
  if (ratios.length > 0) out.push(`static / dynamic peak activation memory by batch: ${ratios.map((r) => `${r.batch}: ${r.memory.toFixed(1)}x`).join(', ')}`);
  const fit = (p: string) => Math.max(0, ...results.filter((r) => r.policy === p && !r.oom).map((r) => r.batch));
  if (results.some((r) => r.oom)) out.push(`largest batch within the memory limit: ${[...new Set(results.map((r) => r.policy))].map((p) => `${p} ${fit(p) || 'none'}`).join(', ')}`);
  return out;
}

function chart(results: readonly GatingResult[], what: string): string {
  const policies = [...new Set(results.map((r) => r.policy))];
  return lineChartSvg({
    title: `MoE layer throughput vs batch size (${what})`,
    xLabel: 'batch size (tokens)',
    yLabel: 'tokens / s',
    logX: true,
    series: policies.map((p) => ({
      name: p,
      points: results.filter((r) => r.policy === p && r.tokens_per_s !== null).map((r) => [r.batch, r.tokens_per_s!] as [number, number]),
    })),
  });
}
