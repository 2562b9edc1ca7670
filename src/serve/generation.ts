import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { ApiError, sendError, toApiError } from './api-error.js';
import type { ServeContext } from './context.js';
import type { SamplingFields } from './schemas.js';
import { SseStream } from './sse.js';

/** How one endpoint shapes its chunks and its final response (completions vs chat completions). */
export interface ResponseShape {
  readonly idPrefix: string;
  /** one streamed chunk: `text` added, finish reason when it ends */
  chunk(base: BaseFields, text: string, finish: string | null, first: boolean): object | null;
  /** the whole response when not streaming */
  full(base: BaseFields, text: string, finish: string, usage: Usage, ids: number[] | undefined): object;
}

export interface BaseFields {
  id: string;
  created: number;
  model: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * Runs one generation request through the scheduler and answers it, streamed (SSE) or whole.
 * A client that disconnects cancels its request at once, which frees its sequence's KV cache.
 * `echo` gives the prompt's text when the answer starts with it (completions' `echo`): the first
 * streamed chunk, or the head of the whole text.
 */
export async function runGeneration(ctx: ServeContext, reply: FastifyReply, body: SamplingFields, prompt: number[], shape: ResponseShape, echo?: () => string): Promise<void> {
  if (body.model !== ctx.modelName) throw new ApiError(404, `the model '${body.model}' does not exist: this server serves '${ctx.modelName}'`, 'model_not_found', 'model');
  if (prompt.length === 0) throw new ApiError(400, 'the prompt encodes to no tokens', 'invalid_value', 'prompt');
  for (const id of prompt) {
    if (id >= ctx.vocabSize) throw new ApiError(400, `prompt token id ${id} is outside the vocabulary [0, ${ctx.vocabSize})`, 'invalid_value', 'prompt');
  }
  const room = ctx.maxContext - prompt.length;
  if (room < 1) throw new ApiError(400, `the prompt has ${prompt.length} tokens; the context holds ${ctx.maxContext}, leaving no room to generate`, 'context_length_exceeded', 'prompt');
  const asked = body.max_completion_tokens ?? body.max_tokens ?? ctx.defaultMaxTokens;
  const maxTokens = Math.min(asked, room);
  const echoed = echo?.() ?? '';
  const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? []);
  const base: BaseFields = { id: `${shape.idPrefix}-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: ctx.modelName };
  const stream = body.stream === true;
  const wantIds = body.return_token_ids === true;
  const start = performance.now();
  let firstAt = 0;
  let lastAt = 0;
  const ids: number[] = [];
  let text = echoed;
  let sse: SseStream | undefined;
  let settled = false;

  await new Promise<void>((resolve) => {
    const finishMetrics = (): void => {
      ctx.metrics.promptTokens.inc(prompt.length);
      ctx.metrics.generationTokens.inc(ids.length);
      if (ids.length > 1) ctx.metrics.tpot.observe((lastAt - firstAt) / 1000 / (ids.length - 1));
    };
    const usage = (): Usage => ({ prompt_tokens: prompt.length, completion_tokens: ids.length, total_tokens: prompt.length + ids.length });
    let ticket: { cancel(): void };
    try {
      ticket = ctx.scheduler.submit(prompt, { maxTokens, temperature: body.temperature ?? undefined, topP: body.top_p ?? undefined, seed: body.seed ?? undefined, stop, stopAtEos: body.ignore_eos !== true }, {
        token(id, piece) {
          const now = performance.now();
          if (ids.length === 0) {
            firstAt = now;
            ctx.metrics.ttft.observe((now - start) / 1000);
          }
          lastAt = now;
          ids.push(id);
          ctx.metrics.tokensOut++;
          text += piece;
          if (sse && piece.length > 0) sse.send(shape.chunk(base, piece, null, false));
        },
        finish(reason) {
          settled = true;
          finishMetrics();
          if (sse) {
            sse.send(shape.chunk(base, '', reason, false));
            if (body.stream_options?.include_usage) sse.send({ ...shape.chunk(base, '', null, false)!, choices: [], usage: usage() });
            sse.done();
          } else {
            void reply.code(200).send(shape.full(base, text, reason, usage(), wantIds ? ids : undefined));
          }
          resolve();
        },
        fail(err) {
          settled = true;
          const api = toApiError(err);
          ctx.log(`request ${base.id} failed: ${err.message}`);
          if (sse) {
            sse.send(api.body);
            sse.done();
          } else void sendError(reply, api);
          resolve();
        },
      });
    } catch (e) {
      void sendError(reply, toApiError(e));
      resolve();
      return;
    }
    if (stream) {
      reply.hijack();
      sse = new SseStream(reply.raw);
      const opening = shape.chunk(base, '', null, true);
      if (opening) sse.send(opening);
      if (echoed.length > 0) sse.send(shape.chunk(base, echoed, null, false));
    }
    reply.raw.on('close', () => {
      if (!settled) {
        settled = true;
        ticket.cancel();
        resolve();
      }
    });
  });
}
