/**
 * Every user-facing failure is a MoesaicError with a stable code, so the CLI can print one clear line
 * (never a stack trace unless --debug) and tests can assert the code rather than the wording.
 */
export type ErrorCode =
  | 'E_BAD_CHECKPOINT' // a weight file is missing, truncated or malformed
  | 'E_MISSING_TENSOR' // a tensor the architecture needs is absent
  | 'E_BAD_CONFIG' // config.json is missing, malformed or has an unsupported value
  | 'E_UNSUPPORTED_ARCH' // model_type / architecture not implemented
  | 'E_BAD_INPUT' // token ids out of range, prompt too long, empty input
  | 'E_BAD_OPTION' // a command-line or API option is invalid
  | 'E_BAD_TRACE' // a routing trace is malformed
  | 'E_NATIVE' // the native addon is missing or failed
  | 'E_IO'; // a file could not be read or written

export class MoesaicError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'MoesaicError';
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new MoesaicError(code, message);
}

/**
 * A value as an error message should show it. JSON.stringify prints NaN and Infinity as `null` and
 * nothing for undefined; an integer beyond 2^53 was already rounded when its JSON was parsed (2^63-1
 * reads as 9223372036854775808), so its digits would be invented: it is shown approximately and said
 * to be too large. A bigint (from a GGUF u64/i64) is exact.
 */
export function showValue(v: unknown): string {
  if (typeof v === 'number') {
    if (Number.isNaN(v) || !Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) return `${v.toPrecision(6)} (beyond 2^53, too large to be exact)`;
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (v === undefined) return 'undefined';
  return JSON.stringify(v) ?? String(v);
}
