import type { FastifyReply } from 'fastify';

/** OpenAI's error `type` for each status this server answers with. */
const TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  500: 'server_error',
  503: 'server_error',
};

/**
 * An HTTP failure with OpenAI's error body (`{"error": {message, type, param, code}}`), so the official
 * clients raise their typed errors (BadRequestError, AuthenticationError, ...) with our message.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: TYPES[this.status] ?? 'server_error', param: this.param, code: this.code } };
  }
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  if (err.status === 429 || err.status === 503) reply.header('retry-after', '1');
  return reply.code(err.status).type('application/json').send(err.body);
}

/**
 * Any error thrown inside a route or by Fastify itself -> an ApiError. Validation failures name the
 * field; an oversized body is a 413; anything unexpected is a 500 whose message never carries a stack.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string; validation?: { instancePath: string; keyword?: string; message?: string; params?: Record<string, unknown>; parentSchema?: { description?: string } }[] };
  if (e.validation && e.validation.length > 0) {
    // a value of none of a field's forms fails every branch on its type: name the forms instead
    const forms = e.validation.find((x) => x.keyword === 'anyOf' && x.parentSchema?.description);
    if (forms && e.validation.every((x) => x.keyword === 'type' || x.keyword === 'anyOf')) {
      const field = forms.instancePath.replace(/^\//, '').replaceAll('/', '.');
      return new ApiError(400, `invalid request: ${field} must be ${forms.parentSchema!.description}`, 'invalid_value', field || null);
    }
    // a field with alternatives (stop: a string or up to 4) fails every branch: name the branch whose
    // type matched (its limit) rather than the first branch's type
    const v = e.validation.find((x) => x.keyword !== 'type' && x.keyword !== 'anyOf') ?? e.validation[0]!;
    const extra = v.params?.additionalProperty ?? v.params?.missingProperty;
    const field = [v.instancePath.replace(/^\//, '').replaceAll('/', '.'), extra].filter((s) => s !== undefined && s !== '').join('.');
    const allowed = Array.isArray(v.params?.allowedValues) ? ` (allowed: ${(v.params.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')})` : '';
    return new ApiError(400, `invalid request: ${field || 'body'} ${(v.message ?? 'is invalid').replace(/,null\b/, '')}${allowed}`, 'invalid_value', field || null);
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'request body is too large', 'request_too_large');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(400, 'the body must be application/json', 'invalid_content_type');
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && e.message)) {
    return new ApiError(400, `invalid JSON body: ${e.message ?? 'cannot parse'}`, 'invalid_json');
  }
  return new ApiError(500, 'internal server error', 'internal_error');
}
