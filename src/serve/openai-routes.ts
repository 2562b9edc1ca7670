import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-error.js';
import type { ServeContext } from './context.js';
import type { ResponseShape } from './generation.js';
import { runGeneration } from './generation.js';
import { onePrompt } from './prompt-input.js';
import type { ChatRequest, CompletionRequest } from './schemas.js';
import { chatBody, completionBody } from './schemas.js';
import { rejectUnsupportedFields } from './unsupported-fields.js';

const completionShape: ResponseShape = {
  idPrefix: 'cmpl',
  chunk: (base, text, finish, first) => (first ? null : { ...base, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] }),
  full: (base, text, finish, usage, ids) => ({
    ...base,
    object: 'text_completion',
    choices: [{ index: 0, text, logprobs: null, finish_reason: finish, ...(ids ? { token_ids: ids } : {}) }],
    usage,
  }),
};

const chatShape: ResponseShape = {
  idPrefix: 'chatcmpl',
  chunk: (base, text, finish, first) => ({
    ...base,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: first ? { role: 'assistant', content: '' } : finish ? {} : { content: text }, logprobs: null, finish_reason: finish }],
  }),
  full: (base, text, finish, usage, ids) => ({
    ...base,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish, ...(ids ? { token_ids: ids } : {}) }],
    usage,
  }),
};

/** The OpenAI-compatible routes: models, completions, chat completions. */
export function registerOpenAiRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const encode = (text: string, field: string): number[] => {
    if (!ctx.encode) throw new ApiError(400, `this model has no tokenizer: send ${field} as token ids`, 'no_tokenizer', field);
    return ctx.encode(text);
  };

  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: ctx.modelName, object: 'model', created: 0, owned_by: 'moesaic' }],
  }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    if (req.params.id !== ctx.modelName) throw new ApiError(404, `the model '${req.params.id}' does not exist`, 'model_not_found', 'model');
    return { id: ctx.modelName, object: 'model', created: 0, owned_by: 'moesaic' };
  });

  app.post<{ Body: CompletionRequest }>('/v1/completions', { schema: { body: completionBody } }, async (req, reply) => {
    const b = req.body;
    rejectUnsupportedFields(b as unknown as Record<string, unknown>);
    const one = onePrompt(b.prompt);
    const prompt = typeof one === 'string' ? encode(one, 'prompt') : one;
    if (b.echo === true && typeof one !== 'string' && !ctx.decode) throw new ApiError(400, 'this model has no tokenizer to echo a token-id prompt as text: leave echo out', 'no_tokenizer', 'echo');
    // decoded only once the ids are known to be in the vocabulary (runGeneration checks them first)
    const echo = b.echo !== true ? undefined : typeof one === 'string' ? () => one : () => ctx.decode!(one);
    await runGeneration(ctx, reply, b, prompt, completionShape, echo);
  });

  app.post<{ Body: ChatRequest }>('/v1/chat/completions', { schema: { body: chatBody } }, async (req, reply) => {
    const b = req.body;
    rejectUnsupportedFields(b as unknown as Record<string, unknown>);
    const messages = b.messages.map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('') }));
    let text: string;
    try {
      text = ctx.chat.render(messages);
    } catch (e) {
      throw new ApiError(400, `the chat template failed on these messages: ${(e as Error).message}`, 'invalid_value', 'messages');
    }
    await runGeneration(ctx, reply, b, encode(text, 'messages'), chatShape);
  });
}
