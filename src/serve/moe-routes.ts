import type { FastifyInstance } from 'fastify';
import type { ServeContext } from './context.js';

/**
 * The routing recorder over HTTP (like SGLang's expert-distribution recorder) and the figures the
 * dashboard polls.
 */
export function registerMoeRoutes(app: FastifyInstance, ctx: ServeContext): void {
  app.post('/v1/moe/trace/start', async () => {
    ctx.recorder.start();
    return ctx.recorder.status;
  });
  app.post('/v1/moe/trace/stop', async () => {
    ctx.recorder.stop();
    return ctx.recorder.status;
  });
  /** JSON Lines in the format of `moesaic trace`: save it and run `moesaic analyze` / `simulate` on it. */
  app.get('/v1/moe/trace', async (_req, reply) => reply.type('application/x-ndjson').send(ctx.recorder.toJsonLines()));

  /** Cumulative counters; the dashboard turns differences between polls into rates. */
  app.get('/dashboard/stats', async () => {
    const m = ctx.metrics;
    const cache = ctx.cacheCounters?.() ?? null;
    return {
      model: ctx.modelName,
      time_ms: Date.now(),
      tokens_out: m.tokensOut,
      running: ctx.scheduler.runningCount,
      queue: ctx.scheduler.queueLength,
      batch_size: (await m.batchSize.get()).values[0]?.value ?? 0,
      kv_bytes: ctx.scheduler.kvBytes,
      activations: m.activations.map((row) => Array.from(row)),
      cache,
    };
  });
}
