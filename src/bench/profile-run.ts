import type { RunOptions } from '../options/run-options.js';
import { openCheckpoint } from '../model/checkpoint.js';
import { fileMapper } from '../tensor/backends.js';
import { runChild } from './child.js';
import type { DecodeProfile, FusedSplit, KernelRow, ProfileRow } from './profile.js';
import { decodeBreakdown } from './profile.js';
import type { DecodeProfileJson } from './profile-worker.js';
import { promptIds, specialTokenIds } from './prompt.js';
import type { GenerateJob } from './protocol.js';
import { median } from './stats.js';

/** `bench generate --profile`: the per-token decode breakdown at each thread count, medians over runs. */
export interface ProfileResult {
  readonly prompt_tokens: number;
  readonly decode_steps: number;
  readonly reps: number;
  readonly by_threads: readonly ProfileAtThreads[];
}

export interface ProfileAtThreads {
  readonly threads: number;
  /** the token while profiled (per-op path, clock reads around every call) */
  readonly token_ms: number;
  readonly rows: readonly ProfileRow[];
  /** the model's decode path, and the token unprofiled on it and on the per-op path (medians) */
  readonly decode_path: 'fused' | 'per-op';
  readonly fused_ms?: number;
  readonly per_op_ms: number;
  /** the fused step's split per token (medians over runs) */
  readonly fused_split?: FusedSplit;
}

export async function runProfile(
  o: { model: string; promptTokens: number; genTokens: number; reps: number; threads: readonly number[]; seed: number; childTimeoutMs: number; runOptions?: RunOptions },
  log: (msg: string) => void,
): Promise<ProfileResult> {
  const mapFile = await fileMapper();
  const cfg = openCheckpoint(o.model, mapFile).config;
  const ids = promptIds(cfg.vocabSize, specialTokenIds(o.model, cfg, mapFile), o.promptTokens, o.seed);
  const byThreads = [];
  for (const threads of o.threads) {
    const runs: ProfileRow[][] = [];
    const totals: number[] = [];
    const fused: number[] = [];
    const perOp: number[] = [];
    let path: 'fused' | 'per-op' = 'per-op';
    const splits: FusedSplit[] = [];
    for (let rep = 1; rep <= o.reps; rep++) {
      const job: GenerateJob = { model: o.model, promptIds: ids, genTokens: o.genTokens, threads, warmup: true, runOptions: o.runOptions };
      const p = fromJson(await runChild<DecodeProfileJson>(new URL('./profile-worker.js', import.meta.url), job, o.childTimeoutMs));
      runs.push(decodeBreakdown(p));
      totals.push((p.forwardMs + p.sampleMs + p.detokenizeMs) / p.tokens);
      path = p.decodePath;
      if (p.fusedMs !== undefined) fused.push(p.fusedMs);
      perOp.push(p.perOpMs);
      if (p.fused) splits.push(p.fused);
      log(`profile rep ${rep}/${o.reps}, ${threads} threads: ${totals[totals.length - 1]!.toFixed(2)} ms per decode token`);
    }
    const rows = runs[0]!.map((r, i) => ({
      ...r,
      ms: median(runs.map((x) => x[i]!.ms)),
      calls: median(runs.map((x) => x[i]!.calls)),
      gbs: r.gbs === undefined ? undefined : median(runs.map((x) => x[i]!.gbs!)),
    }));
    const split = (k: keyof FusedSplit) => median(splits.map((x) => x[k]));
    const fusedSplit: FusedSplit | undefined = splits.length
      ? { tokenMs: split('tokenMs'), attentionMs: split('attentionMs'), routingMs: split('routingMs'), expertsMs: split('expertsMs'), attentionBytes: split('attentionBytes'), expertBytes: split('expertBytes') }
      : undefined;
    byThreads.push({ threads, token_ms: median(totals), rows, decode_path: path, fused_ms: fused.length ? median(fused) : undefined, per_op_ms: median(perOp), fused_split: fusedSplit });
  }
  return { prompt_tokens: o.promptTokens, decode_steps: o.genTokens - 1, reps: o.reps, by_threads: byThreads };
}

function fromJson(j: DecodeProfileJson): DecodeProfile {
  return { ...j, kernels: new Map(Object.entries(j.kernels) as [KernelRow, { calls: number; ms: number; bytes: number }][]) };
}

export function formatProfile(r: ProfileResult, model: string): string {
  const lines = [`bench generate --profile: ${model}; ${r.prompt_tokens}-token prompt, ${r.decode_steps} decode steps profiled; median of ${r.reps} runs`];
  for (const t of r.by_threads) {
    lines.push('', `${t.threads} threads: ${t.token_ms.toFixed(3)} ms per decode token while profiled (${(1000 / t.token_ms).toFixed(1)} tok/s), op by op on the per-op path`);
    lines.push(
      t.fused_ms === undefined
        ? `  unprofiled token: ${t.per_op_ms.toFixed(3)} ms (this model decodes on the per-op path)`
        : `  unprofiled token: fused path ${t.fused_ms.toFixed(3)} ms, per-op path ${t.per_op_ms.toFixed(3)} ms (fused ${(t.per_op_ms / t.fused_ms).toFixed(2)}x; alternating bursts)`,
    );
    const f = t.fused_split;
    if (f) {
      const gbs = (bytes: number, ms: number) => (ms > 0 ? (bytes / ms / 1e6).toFixed(1) : '-');
      const rest = Math.max(0, f.tokenMs - f.attentionMs - f.routingMs - f.expertsMs);
      lines.push(
        `  the fused path, per decode token (${f.tokenMs.toFixed(3)} ms with a clock read around each of its calls):`,
        `    attention halves (norms, q/k/v, RoPE, cache write, attention, o, router)  ${f.attentionMs.toFixed(3)} ms  ${gbs(f.attentionBytes, f.attentionMs)} GB/s`,
        `    routing between them (TypeScript softmax + top-k)                        ${f.routingMs.toFixed(3)} ms`,
        `    experts halves (grouped experts, combine, residual)                      ${f.expertsMs.toFixed(3)} ms  ${gbs(f.expertBytes, f.expertsMs)} GB/s`,
        `    the rest (embedding, final norm, lm_head, argmax)                        ${rest.toFixed(3)} ms`,
      );
    }
    const head = ['per decode token', 'ms', '% of token', 'calls', 'GB/s', ''];
    const body = t.rows.map((x) => [
      x.what,
      x.ms.toFixed(3),
      x.memo ? '' : `${((100 * x.ms) / t.token_ms).toFixed(1)}%`,
      x.calls > 0 ? x.calls.toFixed(0) : '',
      x.gbs === undefined ? '' : x.gbs.toFixed(1),
      x.note ?? '',
    ]);
    const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (c: string[]) => c.map((x, i) => (i === 0 || i === 5 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ').trimEnd();
    lines.push(line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line));
  }
  return `${lines.join('\n')}\n`;
}
