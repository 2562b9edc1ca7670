/** A seeded random MoE layer and one rank's tokens, the same in the test and in its worker threads. */
import { softmaxTopKRouter } from '../../src/moe/router-softmax-topk.js';
import { f32Weight } from '../../src/tensor/weight.js';
import { randomF32 } from '../helpers/random.js';

export function layerCase(rank: number) {
  const [E, H, F, k] = [8, 12, 10, 2];
  const T = rank === 1 ? 0 : 3 + 2 * rank; // rank 1 has no tokens: an empty step still exchanges
  const weights = {
    router: f32Weight('router', [E, H], randomF32(E * H, 2, 4)),
    experts: Array.from({ length: E }, (_, e) => ({
      gate: f32Weight(`g${e}`, [F, H], randomF32(F * H, 10 + e)),
      up: f32Weight(`u${e}`, [F, H], randomF32(F * H, 30 + e)),
      down: f32Weight(`d${e}`, [H, F], randomF32(H * F, 50 + e)),
    })),
  };
  return { E, H, F, k, T, weights, router: softmaxTopKRouter(true), x: randomF32(Math.max(1, T) * H, 100 + rank) };
}
