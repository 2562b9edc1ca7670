import { ApiError } from './api-error.js';

/**
 * An OpenAI request field that would change the answer but that this server does not implement.
 * Clients send such fields at their neutral defaults (`logprobs: false`, `presence_penalty: 0`), so
 * the neutral values are accepted; any other value is refused rather than silently ignored, because
 * the client would otherwise get an answer computed without what it asked for.
 */
interface UnsupportedField {
  readonly field: string;
  /** true for the values that ask for nothing (the answer is exactly the one without the field) */
  readonly neutral: (value: unknown) => boolean;
  /** what the field asks for, for the message */
  readonly what: string;
}

const isNullish = (v: unknown): boolean => v === null || v === undefined;
const nullOr =
  (...ok: unknown[]) =>
  (v: unknown): boolean =>
    isNullish(v) || ok.includes(v);
const emptyArray = (v: unknown): boolean => isNullish(v) || (Array.isArray(v) && v.length === 0);
const emptyObject = (v: unknown): boolean => isNullish(v) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

const FIELDS: readonly UnsupportedField[] = [
  // completions: an integer (0 = the sampled token's own log probability); chat: a boolean
  { field: 'logprobs', neutral: nullOr(false), what: 'log probabilities are not computed' },
  { field: 'top_logprobs', neutral: nullOr(0), what: 'log probabilities are not computed' },
  { field: 'best_of', neutral: nullOr(1), what: 'only one candidate is generated per request' },
  { field: 'suffix', neutral: nullOr(''), what: 'insertion (text after the completion) is not supported' },
  { field: 'presence_penalty', neutral: nullOr(0), what: 'sampling penalties are not implemented' },
  { field: 'frequency_penalty', neutral: nullOr(0), what: 'sampling penalties are not implemented' },
  { field: 'repetition_penalty', neutral: nullOr(1), what: 'sampling penalties are not implemented' },
  // vLLM's sampling extras
  { field: 'top_k', neutral: nullOr(0, -1), what: 'top-k sampling is not exposed by this server' },
  { field: 'min_p', neutral: nullOr(0), what: 'min-p sampling is not implemented' },
  { field: 'min_tokens', neutral: nullOr(0), what: 'a minimum length is not implemented' },
  { field: 'stop_token_ids', neutral: emptyArray, what: 'stop token ids are not implemented (use stop strings)' },
  { field: 'logit_bias', neutral: emptyObject, what: 'logit bias is not implemented' },
  { field: 'tools', neutral: emptyArray, what: 'tool calling is not supported' },
  { field: 'functions', neutral: emptyArray, what: 'function calling is not supported' },
  // with no tools, 'auto' can call none: the same answer as 'none'
  { field: 'tool_choice', neutral: nullOr('none', 'auto'), what: 'tool calling is not supported' },
  { field: 'function_call', neutral: nullOr('none', 'auto'), what: 'function calling is not supported' },
  { field: 'response_format', neutral: (v) => isNullish(v) || (typeof v === 'object' && (v as { type?: unknown }).type === 'text'), what: 'structured output (JSON mode, JSON schema) is not supported' },
  { field: 'modalities', neutral: (v) => isNullish(v) || (Array.isArray(v) && v.every((m) => m === 'text')), what: 'only text output is supported' },
  { field: 'audio', neutral: isNullish, what: 'only text output is supported' },
  { field: 'web_search_options', neutral: isNullish, what: 'web search is not supported' },
];

/** Refuses (400, naming the field) the first field of `body` that asks for something not implemented. */
export function rejectUnsupportedFields(body: Record<string, unknown>): void {
  for (const f of FIELDS) {
    const v = body[f.field];
    if (f.neutral(v)) continue;
    throw new ApiError(400, `${f.field} = ${JSON.stringify(v)} is not supported by this server (${f.what}): leave it out or send its default`, 'unsupported_parameter', f.field);
  }
}
