import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { fail } from '../../errors.js';
import type { LynxQuality } from '../../bench/lynx-quality.js';
import { measureLynx } from '../../bench/lynx-quality.js';
import { loadModel } from '../../model/model.js';
import { floatArg, inputFileArg, intArg } from '../parse.js';

interface LynxBenchCli {
  model: string;
  text: string;
  batches: number[];
  thresholds: number[];
  prefill: number;
  decode: number;
  groups: number;
  threads?: number;
  json?: boolean;
}

/**
 * `moesaic bench lynx`: what Lynx's batch-aware expert selection costs in quality, on held-out text:
 * perplexity, KL against exact routing and greedy agreement of teacher-forced batched decode steps,
 * with the experts each decode step activates, per batch size and threshold (its speed is measured
 * by `bench serve`).
 */
export function register(bench: Command): void {
  bench
    .command('lynx')
    .description('Lynx quality vs exact routing on held-out text: perplexity, KL, greedy agreement, experts per decode step')
    .requiredOption('--model <path>', 'checkpoint folder or .gguf file')
    .requiredOption('--text <file>', 'held-out text (e.g. heldout.txt of ../shared/models/pymoe-mixtral)', inputFileArg('--text'))
    .option('--batches <csv>', 'decode batch sizes', csvNumbers('--batches', true), [4, 8, 16, 32])
    .option('--thresholds <csv>', 'Lynx thresholds in (0, 1]', csvNumbers('--thresholds', false), [0.8, 0.9, 0.95])
    .option('--prefill <n>', 'prompt tokens per window (exact routing)', intArg('--prefill', 1, 1 << 16), 32)
    .option('--decode <n>', 'teacher-forced decode steps per window', intArg('--decode', 1, 1 << 16), 64)
    .option('--groups <g>', 'batches of windows per batch size (more positions)', intArg('--groups', 1, 1 << 16), 4)
    .option('--threads <t>', 'kernel threads', intArg('--threads', 1, 256))
    .option('--json', 'print JSON instead of the table')
    .action(async (o: LynxBenchCli) => {
      const exact = await loadModel(o.model, { threads: o.threads });
      if (o.prefill + o.decode > exact.config.maxPositions) fail('E_BAD_OPTION', `--prefill + --decode exceeds the context of ${exact.config.maxPositions}`);
      const ids = exact.encode(readFileSync(o.text, 'utf8'));
      const rows: (LynxQuality & { threshold: number })[] = [];
      for (const threshold of o.thresholds) {
        const lynx = await loadModel(o.model, { threads: o.threads, lynx: 'on', lynxThreshold: threshold });
        for (const batch of o.batches) {
          const q = measureLynx(exact, lynx, ids, batch, o.groups, o.prefill, o.decode);
          rows.push({ threshold, ...q });
          process.stderr.write(`bench lynx: threshold ${threshold} batch ${batch}: experts ${q.expertsExact.toFixed(2)} -> ${q.expertsLynx.toFixed(2)}, KL ${q.klMean.toFixed(4)}\n`);
        }
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ model: o.model, text: o.text, prefill: o.prefill, decode: o.decode, groups: o.groups, rows }, null, 2)}\n`);
        return;
      }
      const lines = [
        `bench lynx: ${o.model}, ${o.text}: ${o.groups} batches of windows per batch size, ${o.prefill} prefill + ${o.decode} teacher-forced decode steps per window`,
        '| threshold | batch | experts/layer/step exact | Lynx | perplexity exact | Lynx | KL(exact‖Lynx) nats | greedy agreement |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...rows.map((r) => `| ${r.threshold} | ${r.batch} | ${r.expertsExact.toFixed(2)} | ${r.expertsLynx.toFixed(2)} | ${r.pplExact.toFixed(2)} | ${r.pplLynx.toFixed(2)} | ${r.klMean.toFixed(4)} | ${(100 * r.top1Agreement).toFixed(1)}% |`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function csvNumbers(name: string, integers: boolean) {
  return (v: string): number[] => {
    const parts = v.split(',').map((s) => Number(s.trim()));
    if (parts.some((n) => !Number.isFinite(n) || n <= 0 || (integers ? !Number.isInteger(n) : n > 1))) {
      fail('E_BAD_OPTION', `${name} must be a comma-separated list of ${integers ? 'positive integers' : 'numbers in (0, 1]'}, got '${v}'`);
    }
    return parts;
  };
}
