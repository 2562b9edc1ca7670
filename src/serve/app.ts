import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { ApiError, sendError, toApiError } from './api-error.js';
import type { ServeContext } from './context.js';
import { DASHBOARD_HTML } from './dashboard-page.js';
import { registerMoeRoutes } from './moe-routes.js';
import { registerOpenAiRoutes } from './openai-routes.js';

/** Largest accepted request body (bytes); larger ones get a 413. */
export const BODY_LIMIT = 1 << 20;

/**
 * The HTTP app: OpenAI routes, the MoE routes, /health, /metrics and the dashboard. Every error leaves
 * as an OpenAI-shaped JSON body (never a stack trace); each request is logged as one line when its
 * response closes (streamed ones included).
 */
export function buildApp(ctx: ServeContext): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // strict types: "5" is not a number, unknown fields are kept (and ignored), not silently coerced
    // verbose: a failed anyOf carries its schema, whose description names the accepted forms
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true } },
  });

  app.addHook('onRequest', async (req, reply) => {
    const start = performance.now();
    reply.raw.on('close', () => {
      const route = req.routeOptions.url ?? 'unmatched';
      const status = reply.raw.statusCode;
      ctx.metrics.requests.inc({ route, status: String(status) });
      ctx.log(`${req.method} ${req.url} ${status} ${(performance.now() - start).toFixed(1)}ms${reply.raw.writableFinished ? '' : ' (client went away)'}`);
    });
    if (ctx.apiKey !== undefined && req.url.startsWith('/v1/') && req.headers.authorization !== `Bearer ${ctx.apiKey}`) {
      throw new ApiError(401, 'a valid API key is required: send the header Authorization: Bearer <key>', 'invalid_api_key');
    }
  });

  app.setErrorHandler((err, _req, reply) => {
    const api = toApiError(err);
    if (api.status === 500) ctx.log(`internal error: ${(err as Error).message}`);
    return sendError(reply, api);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new ApiError(404, `no route ${req.method} ${req.url.split('?')[0]}`, 'not_found')));

  app.get('/health', async () => ({ status: 'ok', running: ctx.scheduler.runningCount, queue: ctx.scheduler.queueLength }));
  app.get('/metrics', async (_req, reply) => {
    ctx.metrics.queueLength.set(ctx.scheduler.queueLength);
    ctx.metrics.kvBytes.set(ctx.scheduler.kvBytes);
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(DASHBOARD_HTML));
  registerOpenAiRoutes(app, ctx);
  registerMoeRoutes(app, ctx);
  return app;
}
