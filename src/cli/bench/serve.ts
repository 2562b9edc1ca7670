import { loadavg } from 'node:os';
import type { Command } from 'commander';
import { fail } from '../../errors.js';
import { medianRecord } from '../../bench/stats.js';
import type { LoadSummary } from '../../bench/serve-load.js';
import { planLoad, runLoad, summarize } from '../../bench/serve-load.js';
import { loadModel } from '../../model/model.js';
import { addRunOptions } from '../../options/run-options.js';
import { createServer } from '../../serve/server.js';
import type { MatmulPrecision } from '../../tensor/matmul-precision.js';
import type { Server } from '../../serve/server.js';
import { DEFAULT_MAX_STEP_TOKENS } from '../../serve/scheduler.js';
import { floatArg, intArg, sizeArg } from '../parse.js';

/** One serving configuration compared by the bench. */
interface ServeConfig {
  readonly name: string;
  /** continuous batching (max batch = clients) or one request at a time */
  readonly batching: boolean;
  readonly gating: string;
  readonly lynx: 'off' | 'on';
}

const CONFIGS: readonly ServeConfig[] = [
  { name: 'continuous', batching: true, gating: 'dynamic', lynx: 'off' },
  { name: 'one-at-a-time', batching: false, gating: 'dynamic', lynx: 'off' },
  { name: 'static-gating', batching: true, gating: 'static', lynx: 'off' },
  { name: 'lynx', batching: true, gating: 'dynamic', lynx: 'on' },
];

interface ServeBenchCli {
  model: string;
  clients: number;
  rate: number;
  requests: number;
  maxTokens: number;
  promptLengths: number[];
  reps: number;
  configs: string[];
  threads?: number;
  maxStepTokens: number;
  kvMemory: number;
  lynxThreshold?: number;
  seed: number;
  json?: boolean;
  matmulPrecision: MatmulPrecision;
  hugepages: 'on' | 'off';
}

/**
 * `moesaic bench serve`: the server under Poisson arrivals of prompts of mixed lengths, configurations
 * side by side in one run (continuous batching vs one request at a time, dynamic vs static gating,
 * Lynx on vs off), each fed exactly the same requests; repetitions interleave the configurations so
 * machine noise hits them alike, and medians are reported with ratios to continuous batching.
 */
export function register(bench: Command): void {
  addRunOptions(bench.command('serve'), { keys: ['matmulPrecision', 'hugepages'] })
    .description('serving throughput and TTFT/TPOT p50/p99 under Poisson arrivals: continuous batching vs one-at-a-time, dynamic vs static gating, Lynx on vs off')
    .requiredOption('--model <path>', 'Hugging Face checkpoint folder or .gguf file')
    .option('--clients <n>', 'concurrent clients (and the max batch of batching configurations)', intArg('--clients', 1, 1024), 16)
    .option('--rate <r>', 'Poisson arrival rate, requests/s (0 = all at once); the default is above what the bench model serves at 16 clients, so the server is saturated (the table\'s "arrivals queued" says whether it was)', floatArg('--rate', 0, 1e6), 16)
    .option('--requests <k>', 'requests per configuration and repetition', intArg('--requests', 1, 100_000), 64)
    .option('--max-tokens <n>', 'tokens each request generates (EOS ignored)', intArg('--max-tokens', 2, 100_000), 64)
    .option('--prompt-lengths <csv>', 'prompt lengths drawn uniformly per request', csvInts('--prompt-lengths'), [8, 24, 64])
    .option('--reps <r>', 'repetitions; medians are reported', intArg('--reps', 1, 100), 3)
    .option('--configs <csv>', `configurations to compare: ${CONFIGS.map((c) => c.name).join(',')}`, csvNames('--configs'), CONFIGS.map((c) => c.name))
    .option('--threads <t>', 'kernel threads (default: one per core)', intArg('--threads', 1, 256))
    .option('--max-step-tokens <n>', 'tokens in one step at most', intArg('--max-step-tokens', 1, 1 << 20), DEFAULT_MAX_STEP_TOKENS)
    .option('--kv-memory <size>', 'KV cache budget', sizeArg('--kv-memory'), 4 * 2 ** 30)
    .option('--lynx-threshold <t>', 'the Lynx configuration\'s threshold', floatArg('--lynx-threshold', 1e-6, 1))
    .option('--seed <s>', 'seed of arrivals and prompts', intArg('--seed', 0), 0)
    .option('--json', 'print the JSON result instead of the table')
    .action(async (o: ServeBenchCli) => {
      const log = (msg: string): void => void process.stderr.write(`bench serve: ${msg}\n`);
      const configs = CONFIGS.filter((c) => o.configs.includes(c.name));
      if (o.maxStepTokens < o.clients) fail('E_BAD_OPTION', `--max-step-tokens (${o.maxStepTokens}) must be at least --clients (${o.clients})`);
      const servers: { config: ServeConfig; server: Server; url: string }[] = [];
      try {
        for (const config of configs) {
          const model = await loadModel(o.model, { threads: o.threads, gating: config.gating, lynx: config.lynx, lynxThreshold: config.lynx === 'on' ? o.lynxThreshold : undefined, matmulPrecision: o.matmulPrecision, hugepages: o.hugepages });
          const longest = Math.max(...o.promptLengths) + o.maxTokens;
          if (longest > model.config.maxPositions) fail('E_BAD_OPTION', `prompt length + --max-tokens (${longest}) exceeds the model's context of ${model.config.maxPositions}`);
          const server = createServer(model, { maxBatch: config.batching ? o.clients : 1, maxStepTokens: o.maxStepTokens, kvMemory: o.kvMemory, maxQueue: 1 << 20, modelName: 'bench' });
          servers.push({ config, server, url: await server.app.listen({ host: '127.0.0.1', port: 0 }) });
        }
        const vocab = servers[0]!.server.ctx.vocabSize;
        const warm = planLoad({ requests: o.clients, rate: 0, lengths: o.promptLengths, maxTokens: 4, vocab, seed: o.seed + 999 });
        for (const s of servers) await runLoad(s.url, 'bench', warm, o.clients); // page in the weights
        const runs = new Map<string, LoadSummary[]>(configs.map((c) => [c.name, []]));
        for (let rep = 0; rep < o.reps; rep++) {
          const plan = planLoad({ requests: o.requests, rate: o.rate, lengths: o.promptLengths, maxTokens: o.maxTokens, vocab, seed: o.seed + rep });
          for (const s of servers) {
            const { timings, wallMs } = await runLoad(s.url, 'bench', plan, o.clients);
            const sum = summarize(timings, wallMs, o.clients);
            runs.get(s.config.name)!.push(sum);
            log(`rep ${rep + 1}/${o.reps} ${s.config.name}: ${sum.tokensPerS.toFixed(1)} tok/s, TTFT p50 ${sum.ttftP50Ms.toFixed(0)} ms, ${sum.failed} failed (load ${loadavg()[0]!.toFixed(1)})`);
          }
        }
        const medians = Object.fromEntries([...runs].map(([name, list]) => [name, medianRecord(list as unknown as Record<keyof LoadSummary, number>[])]));
        const result = {
          model: o.model,
          clients: o.clients,
          rate: o.rate,
          requests: o.requests,
          maxTokens: o.maxTokens,
          matmulPrecision: o.matmulPrecision,
          promptLengths: o.promptLengths,
          reps: o.reps,
          loadavg: loadavg()[0],
          medians,
          runs: Object.fromEntries(runs),
        };
        process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatTable(result.medians, result));
      } finally {
        for (const s of servers) await s.server.close();
      }
    });
}

function formatTable(medians: Record<string, Record<keyof LoadSummary, number>>, r: { clients: number; rate: number; requests: number; maxTokens: number; matmulPrecision: string; promptLengths: number[]; reps: number; loadavg?: number }): string {
  const base = medians.continuous?.tokensPerS;
  const lines = [
    `bench serve: ${r.requests} requests, ${r.clients} clients, Poisson ${r.rate} req/s, prompts ${r.promptLengths.join('/')} tokens, ${r.maxTokens} tokens each, matmul precision ${r.matmulPrecision}; medians of ${r.reps} (load ${r.loadavg?.toFixed(1)})`,
    '| configuration | tokens/s | vs continuous | requests/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | failed | arrivals queued |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const idle: string[] = [];
  for (const [name, m] of Object.entries(medians)) {
    const ratio = base ? (m.tokensPerS / base).toFixed(2) : '-';
    lines.push(`| ${name} | ${m.tokensPerS.toFixed(1)} | ${ratio}x | ${m.requestsPerS.toFixed(2)} | ${m.ttftP50Ms.toFixed(0)} | ${m.ttftP99Ms.toFixed(0)} | ${m.tpotP50Ms.toFixed(1)} | ${m.tpotP99Ms.toFixed(1)} | ${m.failed} | ${Number.isNaN(m.saturated) ? 'n/a' : `${(100 * m.saturated).toFixed(0)}%`} |`);
    if (m.saturated < 0.5) idle.push(name);
  }
  const one = medians['one-at-a-time'];
  if (base && one) {
    const c = medians.continuous!;
    lines.push(`continuous batching: ${(base / one.tokensPerS).toFixed(2)}x the tokens/s of one request at a time at ${r.clients} clients (TTFT p99 ${c.ttftP99Ms.toFixed(0)} against ${one.ttftP99Ms.toFixed(0)} ms)`);
  }
  if (idle.length > 0) lines.push(`not saturated: ${idle.join(', ')} (fewer than half of the arrivals found all ${r.clients} clients busy): their tokens/s follows the arrival rate, not their capacity; raise --rate to compare capacities`);
  return `${lines.join('\n')}\n`;
}

function csvInts(name: string) {
  return (v: string): number[] => {
    const parts = v.split(',').map((s) => s.trim());
    if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) fail('E_BAD_OPTION', `${name} must be a comma-separated list of positive integers, got '${v}'`);
    return parts.map(Number);
  };
}

function csvNames(name: string) {
  return (v: string): string[] => {
    const parts = v.split(',').map((s) => s.trim());
    const bad = parts.find((p) => !CONFIGS.some((c) => c.name === p));
    if (bad !== undefined) fail('E_BAD_OPTION', `${name}: unknown configuration '${bad}' (available: ${CONFIGS.map((c) => c.name).join(', ')})`);
    return parts;
  };
}
