import { fail } from '../errors.js';
import { Rng } from '../util/rng.js';
import { LogitOrder } from './logit-order.js';

export interface SamplingOptions {
  /** 0 (default) = greedy argmax */
  readonly temperature?: number;
  /** keep only the k most likely tokens (0 = all) */
  readonly topK?: number;
  /** nucleus: keep the smallest set whose probability reaches p (1 = all) */
  readonly topP?: number;
  readonly seed?: number;
  /** token ids never to generate (Hugging Face's `suppress_tokens`): their logits count as -Infinity */
  readonly suppressTokens?: readonly number[];
}

/**
 * Picks the next token from a logits row. Greedy is argmax (ties to the lowest id); otherwise
 * softmax(logits / T) restricted by top-k then top-p, drawn with a seeded generator so a run is
 * reproducible from its seed.
 */
export class Sampler {
  private readonly rng: Rng;
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;
  private readonly suppress: readonly number[];

  constructor(opts: SamplingOptions = {}) {
    this.temperature = opts.temperature ?? 0;
    this.topK = opts.topK ?? 0;
    this.topP = opts.topP ?? 1;
    if (!(this.temperature >= 0) || !Number.isFinite(this.temperature)) fail('E_BAD_OPTION', `temperature must be >= 0, got ${this.temperature}`);
    if (!Number.isInteger(this.topK) || this.topK < 0) fail('E_BAD_OPTION', `top-k must be an integer >= 0, got ${this.topK}`);
    if (!(this.topP > 0 && this.topP <= 1)) fail('E_BAD_OPTION', `top-p must be in (0, 1], got ${this.topP}`);
    this.rng = new Rng(opts.seed ?? 0, 'sampling');
    this.suppress = opts.suppressTokens ?? [];
    if (this.suppress.some((id) => !Number.isInteger(id) || id < 0)) fail('E_BAD_OPTION', 'suppressed token ids must be integers >= 0');
  }

  sample(logits: Float32Array): number {
    // the logits buffer is the forward's own and is overwritten by the next step: masking it in place is free
    for (const id of this.suppress) if (id < logits.length) logits[id] = -Infinity;
    if (this.temperature === 0) return argmax(logits);
    const V = logits.length;
    // Candidates in descending logit order only when top-k / top-p need an order; plain temperature
    // sampling draws over the vocabulary as it is (no per-token sort of the whole vocabulary).
    if (this.topK > 0 && this.topK < V) return this.draw(logits, topIndices(logits, this.topK));
    if (this.topP < 1) return this.draw(logits, this.order.sort(logits)); // the whole vocabulary, ordered
    return this.draw(logits, this.all(V));
  }

  /** softmax(logits / T) over `cand`, cut by top-p in cand's order, then a draw. */
  private draw(logits: Float32Array, cand: Int32Array): number {
    let max = -Infinity;
    for (const i of cand) max = Math.max(max, logits[i]!);
    if (this.probs.length < cand.length) this.probs = new Float64Array(cand.length);
    const probs = this.probs;
    let sum = 0;
    for (let j = 0; j < cand.length; j++) sum += probs[j] = Math.exp((logits[cand[j]!]! - max) / this.temperature);
    let n = cand.length;
    if (this.topP < 1) {
      let acc = 0;
      for (let j = 0; j < n; j++) {
        acc += probs[j]! / sum;
        if (acc >= this.topP) {
          n = j + 1;
          break;
        }
      }
    }
    return this.pick(cand, probs, n);
  }

  /** cand[j] with probability probs[j] / Σ probs over j < n, from the seeded generator. */
  private pick(cand: Int32Array, probs: Float64Array, n: number): number {
    let total = 0;
    for (let j = 0; j < n; j++) total += probs[j]!;
    let r = this.rng.uniform() * total;
    for (let j = 0; j < n; j++) {
      r -= probs[j]!;
      if (r < 0) return cand[j]!;
    }
    return cand[n - 1]!;
  }

  /** [V] work buffer of draw's probabilities (a sequence samples every step: no 8·V-byte array per token) */
  private probs = new Float64Array(0);
  private readonly order = new LogitOrder();
  private identity: Int32Array | undefined;

  private all(V: number): Int32Array {
    if (this.identity?.length !== V) this.identity = Int32Array.from({ length: V }, (_, i) => i);
    return this.identity;
  }
}

/** The k largest entries' indices, largest first (ties to the lower index): one pass with a small sorted buffer. */
function topIndices(row: Float32Array, k: number): Int32Array {
  const idx = new Int32Array(k).fill(-1);
  let filled = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (filled === k && v <= row[idx[k - 1]!]!) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && row[idx[j - 1]!]! < v) {
      idx[j] = idx[j - 1]!;
      j--;
    }
    idx[j] = i;
  }
  return idx;
}

export function argmax(row: Float32Array): number {
  let best = 0;
  let bestValue = row[0]!; // held, not re-read: one load per logit over the whole vocabulary
  for (let i = 1; i < row.length; i++) {
    const v = row[i]!;
    if (v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return best;
}
