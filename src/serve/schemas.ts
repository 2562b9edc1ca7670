/**
 * JSON schemas of the OpenAI request bodies this server accepts (validated by Fastify before a
 * handler runs; a failure names the field). Unknown fields are ignored, as OpenAI clients send extras;
 * the fields that would change the answer but are not implemented are refused unless neutral
 * (src/serve/unsupported-fields.ts).
 */
const sampling = {
  model: { type: 'string', minLength: 1 },
  max_tokens: { type: ['integer', 'null'], minimum: 1 },
  max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  seed: { type: ['integer', 'null'], minimum: 0, maximum: 4294967295 },
  stop: {
    anyOf: [
      { type: 'string', minLength: 1 },
      { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 },
      { type: 'null' },
    ],
  },
  n: { type: ['integer', 'null'], enum: [1, null] },
  stream: { type: ['boolean', 'null'] },
  stream_options: { type: ['object', 'null'], properties: { include_usage: { type: 'boolean' } } },
  /** vLLM's extensions: the generated token ids in each choice; generate past EOS (benchmarks) */
  return_token_ids: { type: ['boolean', 'null'] },
  ignore_eos: { type: ['boolean', 'null'] },
} as const;

export const completionBody = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    ...sampling,
    /** a string, token ids, or a list of one of either (src/serve/prompt-input.ts) */
    prompt: {
      description: 'a string, an array of token ids (integers >= 0), or a list of one string or of one array of token ids',
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 },
        { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
        { type: 'array', items: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 }, minItems: 1 },
      ],
    },
    /** the prompt's text before the completion */
    echo: { type: ['boolean', 'null'] },
  },
} as const;

export const chatBody = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...sampling,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
          content: {
            anyOf: [
              { type: 'string' },
              { type: 'array', items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } } },
            ],
          },
        },
      },
    },
  },
} as const;

/** The fields both endpoints share, after validation. */
export interface SamplingFields {
  model: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  return_token_ids?: boolean | null;
  ignore_eos?: boolean | null;
}

export interface CompletionRequest extends SamplingFields {
  prompt: string | number[] | string[] | number[][];
  echo?: boolean | null;
}

export interface ChatRequest extends SamplingFields {
  messages: { role: string; content: string | { type: 'text'; text: string }[] }[];
}
