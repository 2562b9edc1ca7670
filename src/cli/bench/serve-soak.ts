import { loadavg } from 'node:os';
import type { Command } from 'commander';
import { planLoad, soakLoad } from '../../bench/serve-load.js';
import { loadModel } from '../../model/model.js';
import { DEFAULT_MAX_STEP_TOKENS } from '../../serve/scheduler.js';
import { createServer } from '../../serve/server.js';
import { intArg } from '../parse.js';

interface SoakCli {
  model: string;
  minutes: number;
  clients: number;
  maxTokens: number;
  threads?: number;
  json?: boolean;
}

/**
 * `moesaic bench serve-soak`: a bounded soak: `clients` streaming clients send requests back to back
 * for `minutes`; it reports the failed requests and the process's resident memory (RSS) and KV bytes
 * sampled along the way, so a leak shows as a rising RSS.
 */
export function register(bench: Command): void {
  bench
    .command('serve-soak')
    .description('soak the server: N streaming clients back to back for M minutes; failed requests and RSS over time')
    .requiredOption('--model <path>', 'checkpoint folder or .gguf file')
    .option('--minutes <m>', 'how long', intArg('--minutes', 1, 24 * 60), 10)
    .option('--clients <n>', 'concurrent streaming clients', intArg('--clients', 1, 1024), 32)
    .option('--max-tokens <n>', 'tokens per request', intArg('--max-tokens', 2, 100_000), 32)
    .option('--threads <t>', 'kernel threads', intArg('--threads', 1, 256))
    .option('--json', 'print JSON instead of the summary')
    .action(async (o: SoakCli) => {
      const model = await loadModel(o.model, { threads: o.threads });
      const server = createServer(model, { maxBatch: o.clients, maxStepTokens: DEFAULT_MAX_STEP_TOKENS, kvMemory: 2 ** 32, maxQueue: 1 << 20, modelName: 'soak' });
      const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
      const end = Date.now() + o.minutes * 60_000;
      const samples: { minute: number; rssMiB: number; kvBytes: number; tokensOut: number }[] = [];
      let requests = 0;
      let failed = 0;
      const sample = (): void => {
        samples.push({ minute: (o.minutes * 60_000 - (end - Date.now())) / 60_000, rssMiB: process.memoryUsage().rss / 2 ** 20, kvBytes: server.ctx.scheduler.kvBytes, tokensOut: server.ctx.metrics.tokensOut });
      };
      sample();
      const timer = setInterval(sample, 30_000);
      try {
        // closed loop: each client sends its next request as soon as its previous one ended, until the deadline
        const plan = planLoad({ requests: 256, rate: 0, lengths: [8, 32, 96], maxTokens: o.maxTokens, vocab: server.ctx.vocabSize, seed: 1 });
        ({ requests, failed } = await soakLoad(url, 'soak', plan, o.clients, end - Date.now()));
      } finally {
        clearInterval(timer);
        sample();
        await server.close();
      }
      const result = { minutes: o.minutes, clients: o.clients, requests, failed, loadavg: loadavg()[0], samples };
      if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        process.stdout.write(`serve soak: ${o.minutes} min, ${o.clients} streaming clients: ${requests} requests, ${failed} failed; RSS MiB ${samples.map((s) => s.rssMiB.toFixed(0)).join(' -> ')}; KV bytes at the end ${samples.at(-1)!.kvBytes}\n`);
      }
    });
}
