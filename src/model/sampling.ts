import { fail } from '../errors.js';
import { Rng } from '../gen/rng.js';

export interface SamplingOptions {
  /** 0 (default) = greedy argmax */
  readonly temperature?: number;
  /** keep only the k most likely tokens (0 = all) */
  readonly topK?: number;
  /** nucleus: keep the smallest set whose probability reaches p (1 = all) */
  readonly topP?: number;
  readonly seed?: number;
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

  constructor(opts: SamplingOptions = {}) {
    this.temperature = opts.temperature ?? 0;
    this.topK = opts.topK ?? 0;
    this.topP = opts.topP ?? 1;
    if (!(this.temperature >= 0) || !Number.isFinite(this.temperature)) fail('E_BAD_OPTION', `temperature must be >= 0, got ${this.temperature}`);
    if (!Number.isInteger(this.topK) || this.topK < 0) fail('E_BAD_OPTION', `top-k must be an integer >= 0, got ${this.topK}`);
    if (!(this.topP > 0 && this.topP <= 1)) fail('E_BAD_OPTION', `top-p must be in (0, 1], got ${this.topP}`);
    this.rng = new Rng(opts.seed ?? 0, 'sampling');
  }

  sample(logits: Float32Array): number {
    if (this.temperature === 0) return argmax(logits);
    const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
    const keep = this.topK > 0 ? Math.min(this.topK, order.length) : order.length;
    const max = logits[order[0]!]!;
    const probs: number[] = [];
    let sum = 0;
    for (let i = 0; i < keep; i++) {
      const p = Math.exp((logits[order[i]!]! - max) / this.temperature);
      probs.push(p);
      sum += p;
    }
    let n = keep;
    if (this.topP < 1) {
      let acc = 0;
      for (let i = 0; i < keep; i++) {
        acc += probs[i]! / sum;
        if (acc >= this.topP) {
          n = i + 1;
          break;
        }
      }
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += probs[i]!;
    let r = this.rng.uniform() * total;
    for (let i = 0; i < n; i++) {
      r -= probs[i]!;
      if (r < 0) return order[i]!;
    }
    return order[n - 1]!;
  }
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
