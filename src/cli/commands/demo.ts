import { fail, MoesaicError } from '../../errors.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { generateModel } from '../../gen/gen-model.js';
import { loadModel } from '../../model/model.js';
import type { RoutingObserver } from '../../moe/moe-layer.js';
import { TraceRecorder } from '../../trace/recorder.js';
import { cacheDir } from '../cache-dir.js';
import { choiceArg, intArg, outputPathArg } from '../parse.js';

type Arch = 'mixtral' | 'qwen2_moe' | 'qwen3_moe' | 'olmoe';
const ARCHES: readonly Arch[] = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'];

interface DemoOptions {
  arch: Arch;
  trace?: string;
  prompt: string;
  maxTokens: number;
  seed: number;
}

/**
 * `moesaic demo`: the whole engine on a built-in default. Nothing can be downloaded, so it writes a
 * seeded synthetic checkpoint (real Hugging Face layout, random weights, skewed routing) once into
 * the cache folder, then generates from it and shows what the MoE layers did.
 */
export function register(program: Command): void {
  program
    .command('demo')
    .description('generate text from a synthetic MoE checkpoint (created and cached on first run) and show its routing')
    .addOption(new Option('--arch <arch>', 'architecture of the demo model').default('mixtral').argParser(choiceArg('--arch', ARCHES)))
    .option('--prompt <text>', 'prompt', 'A mixture of experts routes every token to')
    .option('--max-tokens <n>', 'tokens to generate', intArg('--max-tokens', 1, 4096), 48)
    .option('--seed <s>', 'sampling seed', intArg('--seed', 0), 1)
    .option('--trace <file>', 'also record the routing decisions to a trace (.jsonl or .jsonl.gz)', outputPathArg('--trace'))
    .action(async (opts: DemoOptions) => {
      const dir = join(cacheDir(), `demo-${opts.arch}-small-bf16`);
      if (!existsSync(join(dir, 'config.json'))) {
        process.stderr.write(`moesaic demo: writing a synthetic ${opts.arch} checkpoint (random weights) to ${dir} ...\n`);
        await generateModel({ arch: opts.arch, size: 'small', out: dir, seed: 7, dtype: 'bf16', skew: 1.5, outName: `the demo model's cache folder ${dir} (set MOESAIC_CACHE to use another)` });
      }
      const model = await loadModel(dir).catch((e: unknown) => {
        if (e instanceof MoesaicError) fail(e.code, `${e.message} (the cached demo model is damaged: delete ${dir} to write it again)`);
        throw e;
      });
      const c = model.config;
      const log = (s: string) => process.stderr.write(`${s}\n`);
      log(`model: ${c.arch.hfClass} from ${dir}`);
      log(`  ${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numExperts} experts (top-${c.topK}), vocab ${c.vocabSize}`);
      log('  NOTE: the weights are synthetic (seeded random), so the text is gibberish; the machinery is real.\n');

      const counts = c.sparse.map(() => new Array<number>(c.numExperts).fill(0));
      const recorder = opts.trace ? new TraceRecorder(opts.trace, dir, c) : undefined;
      const observer: RoutingObserver = (layer, routing, plan, stats) => {
        for (const e of routing.experts) if (e >= 0) counts[layer]![e]!++; // -1: an empty slot (expert-choice)
        recorder?.observer(layer, routing, plan, stats);
      };
      const promptIds = model.encode(opts.prompt);
      // random weights happily pick lone bytes of multi-byte characters, which print as '\uFFFD' (a
      // trained model does not): suppress the tokens that cannot be decoded on their own; and an end-of-sequence
      // token from random weights means nothing, so the demo generates --max-tokens tokens
      const suppressTokens = [...Array(c.vocabSize).keys()].filter((id) => model.decode([id]).includes('\uFFFD'));
      // a warm-up pass first (thread pool start, weight pages mapped in), as the benchmarks do, so the
      // prefill figure below is the steady-state one, not the first call's
      model.logits(promptIds);
      process.stdout.write(opts.prompt);
      const t0 = performance.now();
      let tFirst = 0;
      let n = 0;
      try {
        for await (const tok of model.generate(promptIds, { maxTokens: opts.maxTokens, temperature: 0.8, topP: 0.95, seed: opts.seed, suppressTokens, stopAtEos: false, observer })) {
          if (n++ === 0) tFirst = performance.now();
          process.stdout.write(tok.text);
        }
        await recorder?.close();
      } catch (e) {
        recorder?.abort();
        throw e;
      }
      const t1 = performance.now();
      process.stdout.write('\n\n');
      log(`prefill (after a warm-up pass): ${promptIds.length} tokens in ${(tFirst - t0).toFixed(1)} ms; decode: ${n - 1} tokens at ${((n - 1) / ((t1 - tFirst) / 1000)).toFixed(1)} tokens/s`);
      log('tokens routed to each expert (dynamic gating: exact counts, nothing dropped or padded):');
      counts.forEach((row, l) => {
        if (!c.sparse[l]) return;
        log(`  layer ${String(l).padStart(2)}: ${row.map((x) => String(x).padStart(4)).join(' ')}`);
      });
    });
}
