import { fail } from '../errors.js';
import type { Model } from '../model/model.js';
import { KvCache } from '../model/kv-cache.js';
import type { RoutingObserver } from '../moe/moe-layer.js';

/** Quality of Lynx's decode routing against exact routing on one batch size (teacher forced). */
export interface LynxQuality {
  batch: number;
  /** decode positions scored (batch x decode steps) */
  positions: number;
  /** distinct experts per MoE layer per decode step, mean */
  expertsExact: number;
  expertsLynx: number;
  /** held-out perplexity of the decode positions */
  pplExact: number;
  pplLynx: number;
  /** mean KL(exact || Lynx) of the next-token distributions, nats */
  klMean: number;
  /** share of positions where both pick the same greedy (argmax) token */
  top1Agreement: number;
}

/**
 * Runs `batch` held-out windows through both models in lockstep: a batched prefill of `prefill`
 * tokens (Lynx leaves prefill alone), then `decode` teacher-forced decode steps in which every window
 * adds its next held-out token, so each MoE layer routes the whole batch's decode tokens together, as
 * in serving. Each model keeps its own KV caches, so Lynx's changes accumulate as they would. Returns
 * perplexity, KL and greedy agreement over the decode positions, and the experts each step activated.
 */
export function measureLynx(exact: Model, lynx: Model, ids: readonly number[], batch: number, groups: number, prefill: number, decode: number): LynxQuality {
  const span = prefill + decode + 1;
  const stride = Math.floor(ids.length / (batch * groups));
  if (stride < span) fail('E_BAD_INPUT', `the held-out text has ${ids.length} tokens, fewer than ${batch * groups} windows of ${span}`);
  const sums = { experts: [0, 0], records: [0, 0], nll: [0, 0], kl: 0, agree: 0 };
  for (let g = 0; g < groups; g++) {
    // windows spread over the whole text: window b of group g starts at (g + b * groups) * stride
    const windows = Array.from({ length: batch }, (_, b) => ids.slice((g + b * groups) * stride, (g + b * groups) * stride + span));
    lockstep(exact, lynx, windows, prefill, decode, sums);
  }
  const n = batch * groups * decode;
  return {
    batch,
    positions: n,
    expertsExact: sums.experts[0]! / sums.records[0]!,
    expertsLynx: sums.experts[1]! / sums.records[1]!,
    pplExact: Math.exp(sums.nll[0]! / n),
    pplLynx: Math.exp(sums.nll[1]! / n),
    klMean: sums.kl / n,
    top1Agreement: sums.agree / n,
  };
}

interface Sums {
  experts: number[];
  records: number[];
  nll: number[];
  kl: number;
  agree: number;
}

function lockstep(exact: Model, lynx: Model, windows: readonly (readonly number[])[], prefill: number, decode: number, sums: Sums): void {
  const cfg = exact.config;
  const batch = windows.length;
  const cache = () => new KvCache(cfg.numLayers, prefill + decode, cfg.numKvHeads * cfg.headDim);
  const run = [exact, lynx].map((model) => ({ model, caches: windows.map(cache), experts: 0, records: 0 }));
  let decoding = false;
  const observe = (r: (typeof run)[number]): RoutingObserver => (_layer, routing) => {
    if (!decoding) return;
    r.experts += new Set(routing.experts).size;
    r.records++;
  };
  for (const r of run) r.model.transformer.forwardBatch(windows.map((w, b) => ({ ids: w.slice(0, prefill), cache: r.caches[b]! })), { observer: observe(r) });
  decoding = true;
  const V = cfg.vocabSize;
  const pe = new Float64Array(V);
  const pl = new Float64Array(V);
  for (let d = 0; d < decode; d++) {
    const rows = run.map((r) =>
      r.model.transformer.forwardBatch(windows.map((w, b) => ({ ids: [w[prefill + d]!], cache: r.caches[b]! })), { observer: observe(r) }).slice(0, batch * V),
    );
    for (let b = 0; b < batch; b++) {
      const target = windows[b]![prefill + d + 1]!;
      logSoftmax(rows[0]!, b * V, V, pe);
      logSoftmax(rows[1]!, b * V, V, pl);
      sums.nll[0]! -= pe[target]!;
      sums.nll[1]! -= pl[target]!;
      let k = 0;
      for (let v = 0; v < V; v++) k += Math.exp(pe[v]!) * (pe[v]! - pl[v]!);
      sums.kl += k;
      if (argmax(pe) === argmax(pl)) sums.agree++;
    }
  }
  run.forEach((r, i) => {
    sums.experts[i]! += r.experts;
    sums.records[i]! += r.records;
  });
}

function logSoftmax(x: Float32Array, off: number, n: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[off + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[off + i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = x[off + i]! - lse;
}

function argmax(x: Float64Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
