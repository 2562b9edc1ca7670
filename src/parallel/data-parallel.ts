import { fail } from '../errors.js';
import type { GenerateOptions, Model } from '../model/model.js';
import type { Communicator } from './communicator.js';
import { total } from './communicator.js';

/**
 * Data-parallel attention over the ranks (DeepSeek's and SGLang's DP attention + EP): prompt i belongs
 * to rank i mod N, each rank runs attention for its own sequences, and the MoE layers exchange tokens
 * between all ranks in lock-step (a rank with nothing left runs empty steps). Rank 0 gets every
 * prompt's result back in prompt order; the other ranks get null.
 */
export function ownPrompts<T>(items: readonly T[], comm: Communicator): { index: number; item: T }[] {
  return items.flatMap((item, index) => (index % comm.size === comm.rank ? [{ index, item }] : []));
}

function runtimeOf(model: Model): NonNullable<Model['ep']> {
  if (!model.ep) fail('E_BAD_OPTION', 'data-parallel runs need a model loaded as one of several ranks (mpirun or --ranks)');
  return model.ep;
}

/** Every position's logits of each prompt (one forward step per prompt on its rank). */
export function dpLogits(model: Model, prompts: readonly (readonly number[])[]): Float32Array[][] | null {
  const ep = runtimeOf(model);
  const mine = ownPrompts(prompts, ep.comm).map(({ item }) => model.logits(item));
  ep.finish();
  const V = model.config.vocabSize;
  const flat = gatherToRankZero(
    ep.comm,
    mine.flatMap((rows) => rows.map((r) => Array.from(r))).flat(),
    (xs) => Float32Array.from(xs),
  );
  if (!flat) return null;
  return regroup(prompts, ep.comm.size, (i) => prompts[i]!.length * V, flat).map((block, i) =>
    Array.from({ length: prompts[i]!.length }, (_, t) => block.slice(t * V, (t + 1) * V)),
  );
}

/** Greedy (or sampled) continuations of the prompts: each rank decodes its own as one batch. */
export async function dpGenerate(model: Model, prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<number[][] | null> {
  const ep = runtimeOf(model);
  const max = opts.maxTokens ?? 64;
  const own = ownPrompts(prompts, ep.comm);
  const ids = await model.generateBatch(own.map((o) => o.item), opts);
  ep.finish();
  // fixed-width rows of max tokens, -1 padded
  const rows = ids.flatMap((r) => [...r, ...new Array<number>(max - r.length).fill(-1)]);
  const flat = gatherToRankZero(ep.comm, rows, (xs) => Int32Array.from(xs));
  if (!flat) return null;
  return regroup(prompts, ep.comm.size, () => max, flat).map((b) => Array.from(b).filter((id) => id >= 0));
}

/** Concatenation of every rank's values in rank order, on rank 0 (an all-gather-v; the rest get null). */
function gatherToRankZero<T extends Float32Array | Int32Array>(comm: Communicator, values: number[], make: (xs: number[]) => T): T | null {
  const counts = new Int32Array(comm.size);
  comm.allGatherV(Int32Array.of(values.length), counts, new Int32Array(comm.size).fill(1));
  const send = make(values);
  const recv = make(new Array<number>(total(counts)).fill(0));
  comm.allGatherV(send, recv, counts);
  return comm.rank === 0 ? recv : null;
}

/** Splits rank-ordered results (rank r's prompts r, r+N, ...) back into prompt order. */
function regroup<T extends Float32Array | Int32Array>(prompts: readonly unknown[], N: number, sizeOf: (i: number) => number, flat: T): T[] {
  const out: T[] = new Array(prompts.length);
  let at = 0;
  for (let r = 0; r < N; r++) {
    for (let i = r; i < prompts.length; i += N) {
      out[i] = flat.subarray(at, at + sizeOf(i)) as T;
      at += sizeOf(i);
    }
  }
  return out;
}
