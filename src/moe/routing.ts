/**
 * The result of routing T tokens to k experts each: assignment a = t*k + j is token t's j-th choice,
 * in descending router weight. This is what dispatch policies consume and what traces record.
 */
export interface Routing {
  readonly tokens: number;
  readonly k: number;
  /** [tokens * k] expert ids */
  readonly experts: Int32Array;
  /** [tokens * k] combine weights */
  readonly weights: Float32Array;
}

/**
 * A routing function: router logits [tokens, E] -> top-k experts and combine weights.
 * Implementations live one per file in this folder; architectures pick theirs from config.
 */
export interface Router {
  readonly name: string;
  route(logits: Float32Array, tokens: number, numExperts: number, k: number): Routing;
}

export function allocRouting(tokens: number, k: number): Routing {
  return { tokens, k, experts: new Int32Array(tokens * k), weights: new Float32Array(tokens * k) };
}
