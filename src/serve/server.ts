import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ModelConfig } from '../model/config.js';
import { sequenceKvBytes } from '../model/model.js';
import type { RoutingListener } from '../moe/moe-layer.js';
import { buildApp } from './app.js';
import { ChatTemplate } from './chat-template.js';
import type { ServeContext } from './context.js';
import type { CacheCounters } from './metrics.js';
import { ServerMetrics } from './metrics.js';
import { RoutingRecorder } from './routing-recorder.js';
import type { SchedulerLimits, ServedSequence, SteppedModel } from './scheduler.js';
import { Scheduler } from './scheduler.js';

/** The model as the server uses it (src/model/model.ts `Model`). */
export interface ServableModel extends SteppedModel<ServedSequence> {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly tokenizer: unknown;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** the expert cache's counters so far; undefined without a cache (src/model/model.ts) */
  expertCacheStats?(): CacheCounters | undefined;
}

export interface ServeOptions extends SchedulerLimits {
  /** the id clients pass as `model` (default: the checkpoint folder's name) */
  readonly modelName?: string;
  readonly apiKey?: string;
  /** max_tokens when a request gives none (default 256) */
  readonly defaultMaxTokens?: number;
  /** routing records the trace recorder keeps at most (default 200,000) */
  readonly maxTraceRecords?: number;
  readonly cacheCounters?: () => CacheCounters | null;
  /** one line per request and per failure (default: none) */
  readonly log?: (line: string) => void;
}

export interface Server {
  readonly app: FastifyInstance;
  readonly ctx: ServeContext;
  /** Fail the pending requests and close the listener. */
  close(): Promise<void>;
}

/** Wires a loaded model to the scheduler, the instruments and the HTTP app (not listening yet). */
export function createServer(model: ServableModel, opts: ServeOptions): Server {
  const cfg = model.config;
  const name = opts.modelName ?? basename(model.dir.replace(/\/+$/, '')).replace(/\.gguf$/, '');
  const cacheCounters = opts.cacheCounters ?? (model.expertCacheStats?.() ? () => model.expertCacheStats?.() ?? null : undefined);
  const metrics = new ServerMetrics(cfg.numLayers, cfg.numExperts, cacheCounters);
  const recorder = RoutingRecorder.forModel(name, cfg, opts.maxTraceRecords ?? 200_000);
  // routing decisions only: a single sequence's decode step can then take the fused path
  const onRouting: RoutingListener = (layer, routing) => {
    metrics.recordRouting(layer, routing.experts);
    recorder.record(layer, routing.tokens, routing.k, routing.experts, routing.weights);
  };
  const scheduler = new Scheduler(model, opts, (p, m) => sequenceKvBytes(cfg, p, m), {
    onRouting,
    beforeStep: () => recorder.beginStep(),
    afterStep: (r) => {
      metrics.batchSize.set(r.sequences);
      metrics.stepTokens.set(r.tokens);
      metrics.queueLength.set(r.queue);
      metrics.kvBytes.set(r.kvBytes);
    },
  });
  const ctx: ServeContext = {
    modelName: name,
    vocabSize: cfg.vocabSize,
    maxContext: cfg.maxPositions,
    defaultMaxTokens: opts.defaultMaxTokens ?? 256,
    encode: model.tokenizer ? (t) => model.encode(t) : null,
    decode: model.tokenizer ? (ids) => model.decode(ids) : null,
    chat: ChatTemplate.load(model.dir),
    scheduler,
    metrics,
    recorder,
    apiKey: opts.apiKey,
    cacheCounters,
    log: opts.log ?? (() => {}),
  };
  const app = buildApp(ctx);
  return {
    app,
    ctx,
    async close() {
      scheduler.close();
      await app.close();
    },
  };
}
