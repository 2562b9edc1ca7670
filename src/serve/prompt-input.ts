import { ApiError } from './api-error.js';

/** The `prompt` of a completion request as the schema admits it (src/serve/schemas.ts). */
export type PromptField = string | number[] | string[] | number[][];

/**
 * The one prompt of a completion request, in any of OpenAI's forms: a string, a list of one string,
 * token ids, or a list of one list of token ids. Several prompts would need several choices (n > 1,
 * which this server does not do), so a list of several is refused with a 400 naming the count. The
 * schema has already refused empty lists.
 */
export function onePrompt(prompt: PromptField): string | number[] {
  if (typeof prompt === 'string') return prompt;
  const first = prompt[0]!;
  if (typeof first === 'number') return prompt as number[];
  if (prompt.length > 1) {
    throw new ApiError(400, `prompt holds ${prompt.length} prompts; this server answers one prompt per request (n = 1): send them as ${prompt.length} requests`, 'unsupported_value', 'prompt');
  }
  return first;
}
