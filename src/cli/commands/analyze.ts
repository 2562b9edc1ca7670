import type { Command } from 'commander';
import { analyzeTrace } from '../../analysis/analyze.js';
import { analysisJson, formatAnalysisText, writeAnalysisFiles } from '../../analysis/analyze-report.js';
import { inputFileArg, outputPathArg } from '../parse.js';

/**
 * `moesaic analyze TRACE`: per-MoE-layer routing statistics (popularity, skew, inactive experts,
 * temporal locality, correlation; docs/trace-analysis.md) from one streaming pass over a trace.
 */
export function register(program: Command): void {
  program
    .command('analyze')
    .description('routing statistics of a trace per MoE layer: popularity, skew, inactive experts, locality, correlation')
    .argument('<trace>', 'routing trace (.jsonl or .jsonl.gz)', inputFileArg('trace'))
    .option('--out <dir>', 'write analysis.json, popularity.svg and inactive.svg into this folder', outputPathArg('--out', 'dir'))
    .option('--json', 'print the analysis as JSON instead of the text summary')
    .action(async (trace: string, o: { out?: string; json?: boolean }) => {
      const a = await analyzeTrace(trace);
      process.stdout.write(o.json ? analysisJson(a) : formatAnalysisText(a, trace));
      if (o.out !== undefined) {
        const written = await writeAnalysisFiles(a, o.out);
        if (!o.json) process.stdout.write(`wrote ${written.join(', ')}\n`);
      }
    });
}
