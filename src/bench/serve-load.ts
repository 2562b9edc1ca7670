import { Rng } from '../util/rng.js';
import { median } from './stats.js';

/** One request of the load: when it arrives (ms after the start) and its prompt. */
export interface PlannedRequest {
  readonly arrivalMs: number;
  readonly prompt: readonly number[];
}

export interface LoadPlan {
  readonly requests: readonly PlannedRequest[];
  readonly maxTokens: number;
}

/** What one request measured (ms on the client's clock). */
export interface RequestTiming {
  readonly sentMs: number;
  readonly firstMs: number;
  readonly endMs: number;
  readonly tokens: number;
  readonly ok: boolean;
  /** it arrived while every client was busy, so it waited for one (the load exceeded what the server completed) */
  readonly queued: boolean;
}

/**
 * Poisson arrivals (exponential gaps at `rate` requests/s; rate 0 = all at once) with prompts of mixed
 * lengths (each drawn from `lengths`) of seeded random token ids, so every configuration of a bench
 * serves exactly the same load.
 */
export function planLoad(o: { requests: number; rate: number; lengths: readonly number[]; maxTokens: number; vocab: number; seed: number }): LoadPlan {
  const rng = new Rng(o.seed, 'serve-load');
  let t = 0;
  const requests: PlannedRequest[] = [];
  for (let i = 0; i < o.requests; i++) {
    if (o.rate > 0 && i > 0) t += (-Math.log(1 - rng.uniform()) / o.rate) * 1000;
    const len = o.lengths[rng.int(o.lengths.length)]!;
    requests.push({ arrivalMs: t, prompt: Array.from({ length: len }, () => 3 + rng.int(o.vocab - 3)) });
  }
  return { requests, maxTokens: o.maxTokens };
}

/**
 * Plays the load against a server: each request is sent at its arrival time or, when all `clients`
 * are busy, as soon as one is free; it streams (`ignore_eos`, so every request generates exactly
 * max_tokens) and records its first-token and end times.
 */
export async function runLoad(baseUrl: string, model: string, plan: LoadPlan, clients: number): Promise<{ timings: RequestTiming[]; wallMs: number }> {
  const t0 = performance.now();
  const timings: RequestTiming[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const req = plan.requests[i];
      if (!req) return;
      // a free client takes the next request at once, so one taken after its arrival found none free
      // (1 ms of slack: the first clients take theirs in the same instant as the start)
      const wait = t0 + req.arrivalMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      timings[i] = { ...(await streamOne(baseUrl, model, req.prompt, plan.maxTokens, t0)), queued: wait < -1 };
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  return { timings, wallMs: performance.now() - t0 };
}

async function streamOne(baseUrl: string, model: string, prompt: readonly number[], maxTokens: number, t0: number): Promise<Omit<RequestTiming, 'queued'>> {
  const sentMs = performance.now() - t0;
  let firstMs = NaN;
  let tokens = 0;
  try {
    const res = await fetch(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, ignore_eos: true, stream_options: { include_usage: true } }),
    });
    if (res.status !== 200 || !res.body) return { sentMs, firstMs, endMs: performance.now() - t0, tokens: 0, ok: false };
    const decoder = new TextDecoder();
    let buf = '';
    for await (const part of res.body) {
      if (Number.isNaN(firstMs)) firstMs = performance.now() - t0;
      buf += decoder.decode(part as Uint8Array, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const usage = /"completion_tokens":(\d+)/.exec(event);
        if (usage) tokens = Number(usage[1]);
      }
    }
    return { sentMs, firstMs, endMs: performance.now() - t0, tokens, ok: tokens === maxTokens };
  } catch {
    return { sentMs, firstMs, endMs: performance.now() - t0, tokens, ok: false };
  }
}

export interface LoadSummary {
  /** output tokens per second over the whole run */
  tokensPerS: number;
  requestsPerS: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  tpotP50Ms: number;
  tpotP99Ms: number;
  failed: number;
  /**
   * share of the requests after the first `clients` that arrived while every client was busy: near 1
   * when the load saturated the server (its throughput is its capacity), near 0 when the server kept
   * up with the arrivals (its throughput is the arrival rate); NaN with no more requests than clients
   */
  saturated: number;
}

export function summarize(timings: readonly RequestTiming[], wallMs: number, clients: number): LoadSummary {
  const later = timings.slice(clients);
  const ok = timings.filter((t) => t.ok);
  const ttft = ok.map((t) => t.firstMs - t.sentMs);
  const tpot = ok.filter((t) => t.tokens > 1).map((t) => (t.endMs - t.firstMs) / (t.tokens - 1));
  const tokens = ok.reduce((n, t) => n + t.tokens, 0);
  return {
    tokensPerS: tokens / (wallMs / 1000),
    requestsPerS: ok.length / (wallMs / 1000),
    ttftP50Ms: percentile(ttft, 0.5),
    ttftP99Ms: percentile(ttft, 0.99),
    tpotP50Ms: percentile(tpot, 0.5),
    tpotP99Ms: percentile(tpot, 0.99),
    failed: timings.length - ok.length,
    saturated: later.length > 0 ? later.filter((t) => t.queued).length / later.length : NaN,
  };
}

/** Nearest-rank percentile (p in (0, 1]); the median for p = 0.5 with an even count averages the middle two. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  if (p === 0.5) return median(values);
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
}

/**
 * A closed loop for a soak: each of `clients` sends its next request (cycling through the plan, arrival
 * times ignored) as soon as its previous one ended, until `forMs` have passed. Only counts are kept,
 * so the load generator's own memory stays flat.
 */
export async function soakLoad(baseUrl: string, model: string, plan: LoadPlan, clients: number, forMs: number): Promise<{ requests: number; failed: number }> {
  const t0 = performance.now();
  let next = 0;
  let requests = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() - t0 < forMs) {
      const req = plan.requests[next++ % plan.requests.length]!;
      const t = await streamOne(baseUrl, model, req.prompt, plan.maxTokens, t0);
      requests++;
      if (!t.ok) failed++;
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  return { requests, failed };
}
