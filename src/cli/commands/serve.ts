import type { Command } from 'commander';
import { fail } from '../../errors.js';
import { underMpirun } from '../../parallel/mpi-communicator.js';
import { DEFAULT_MAX_STEP_TOKENS } from '../../serve/scheduler.js';
import { createServer } from '../../serve/server.js';
import type { ModelOptions } from '../model-options.js';
import { addModelOptions, withModel } from '../model-options.js';
import { intArg, sizeArg } from '../parse.js';

interface ServeCliOptions extends ModelOptions {
  host: string;
  port: number;
  apiKey?: string;
  servedModelName?: string;
  maxBatch: number;
  maxStepTokens: number;
  kvMemory: number;
  maxQueue: number;
  defaultMaxTokens: number;
}

/**
 * `moesaic serve`: the OpenAI-compatible HTTP server (docs/serving.md) with continuous batching over
 * the model's step loop. Binds to 127.0.0.1 unless told otherwise; logs one line per request.
 */
export function register(program: Command): void {
  addModelOptions(
    program
      .command('serve')
      .description('OpenAI-compatible HTTP server with continuous batching, /metrics, a routing recorder and a live dashboard')
      .option('--host <host>', 'address to bind (0.0.0.0 exposes the server to the network)', '127.0.0.1')
      .option('--port <port>', 'TCP port (0 = any free port)', intArg('--port', 0, 65535), 8000)
      .option('--api-key <key>', 'require "Authorization: Bearer <key>" on /v1 routes (default: $MOESAIC_API_KEY, else none)')
      .option('--served-model-name <name>', 'the model id clients use (default: the checkpoint folder name)')
      .option('--max-batch <n>', 'sequences in one step at most', intArg('--max-batch', 1, 4096), 32)
      .option('--max-step-tokens <n>', 'tokens in one step at most (decode tokens + prompt chunks)', intArg('--max-step-tokens', 1, 1 << 20), DEFAULT_MAX_STEP_TOKENS)
      .option('--kv-memory <size>', 'KV cache budget of running sequences (e.g. 512M, 2G)', sizeArg('--kv-memory'), 1 << 30)
      .option('--max-queue <n>', 'requests waiting for admission at most; more get 429', intArg('--max-queue', 0, 1 << 20), 256)
      .option('--default-max-tokens <n>', 'max_tokens of a request that gives none', intArg('--default-max-tokens', 1, 1 << 20), 256),
    { trace: false },
  ).action(async (opts: ServeCliOptions) => {
    if ((opts.ranks ?? 1) > 1 || underMpirun()) {
      fail('E_BAD_OPTION', 'serve runs on one process: expert parallelism (--ranks, mpirun) is not supported by the server');
    }
    if (opts.maxStepTokens < opts.maxBatch) {
      fail('E_BAD_OPTION', `--max-step-tokens (${opts.maxStepTokens}) must be at least --max-batch (${opts.maxBatch}): every running sequence decodes one token per step`);
    }
    await withModel(opts, async (model) => {
      const server = createServer(model, {
        modelName: opts.servedModelName,
        apiKey: opts.apiKey ?? process.env.MOESAIC_API_KEY,
        maxBatch: opts.maxBatch,
        maxStepTokens: opts.maxStepTokens,
        kvMemory: opts.kvMemory,
        maxQueue: opts.maxQueue,
        defaultMaxTokens: opts.defaultMaxTokens,
        log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      });
      let address: string;
      try {
        address = await server.app.listen({ host: opts.host, port: opts.port });
      } catch (e) {
        fail('E_IO', `cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}`);
      }
      process.stderr.write(`moesaic serve: ${server.ctx.modelName} on ${address} (dashboard at ${address}/)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.stderr.write('moesaic serve: shutting down\n');
          void server.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      model.close(); // the expert cache's I/O threads, if any
    });
  });
}
