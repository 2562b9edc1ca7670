// /metrics (Prometheus text) and the routing recorder over HTTP: the recorded trace passes the trace
// format's validation and counts exactly the tokens that were routed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { validateHeader, validateRecord } from '../../src/trace/format.js';
import { genModel, removeDir, tempDir } from '../reference/harness.js';
import type { Running } from './serve-harness.js';
import { idle, startServer } from './serve-harness.js';

const root = tempDir('moesaic-serve-obs-');
const dir = join(root, 'tiny');
let srv: Running;

before(async () => {
  await genModel(dir, 'mixtral', { seed: 31, dtype: 'f32' });
  srv = await startServer(dir, { maxBatch: 8, maxStepTokens: 64 });
});
after(async () => {
  await srv?.close();
  removeDir(root);
});

const post = (path: string, body?: unknown) =>
  fetch(`${srv.url}${path}`, { method: 'POST', headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  assert.ok(line, `metric ${name} missing`);
  return Number(line.split(' ').at(-1));
}

test('a trace recorded over HTTP has one record per step and MoE layer and every routed token', async () => {
  assert.equal((await post('/v1/moe/trace/start')).status, 200);
  const prompts = [[1, 2, 3, 4], [9, 8, 7]];
  await Promise.all(prompts.map((prompt) => post('/v1/completions', { model: 'tiny', prompt, max_tokens: 5 })));
  const status = (await (await post('/v1/moe/trace/stop')).json()) as { recording: boolean; steps: number };
  assert.equal(status.recording, false);
  const res = await fetch(`${srv.url}/v1/moe/trace`);
  assert.match(res.headers.get('content-type') ?? '', /ndjson/);
  const lines = (await res.text()).trim().split('\n');
  const header = validateHeader(JSON.parse(lines[0]!), 'trace');
  const records = lines.slice(1).map((l, i) => validateRecord(JSON.parse(l), header, `record ${i}`));
  assert.equal(records.length, status.steps * header.moe_layers.length);
  // tokens routed per layer = prompt tokens + generated tokens that were fed back (5 - 1 per request)
  const want = 7 + 2 * 4;
  for (const layer of header.moe_layers) {
    assert.equal(records.filter((r) => r.layer === layer).reduce((n, r) => n + r.experts.length, 0), want, `layer ${layer}`);
  }
  // recording stopped: new traffic adds nothing
  await post('/v1/completions', { model: 'tiny', prompt: [4, 4], max_tokens: 2 });
  assert.equal((await (await fetch(`${srv.url}/v1/moe/trace`)).text()).trim().split('\n').length, lines.length);
});

test('/metrics: requests, tokens, TTFT/TPOT histograms, expert activations per layer', async () => {
  await idle(srv);
  const before = await (await fetch(`${srv.url}/metrics`)).text();
  await post('/v1/completions', { model: 'tiny', prompt: [3, 1, 4, 1, 5], max_tokens: 6 });
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const delta = (name: string) => metricValue(text, name) - metricValue(before, name);
  assert.equal(delta('moesaic_prompt_tokens_total'), 5);
  assert.equal(delta('moesaic_generation_tokens_total'), 6);
  assert.equal(delta('moesaic_time_to_first_token_seconds_count'), 1);
  assert.equal(delta('moesaic_time_per_output_token_seconds_count'), 1);
  assert.match(text, /moesaic_requests_total\{route="\/v1\/completions",status="200"\} \d+/);
  assert.match(text, /moesaic_queue_length 0/);
  assert.match(text, /moesaic_kv_cache_bytes 0/);
  // activations: every routed token counts k = 2 experts in each MoE layer
  const activations = (t: string) => t.split('\n').filter((l) => l.startsWith('moesaic_expert_activations_total{')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  const layers = srv.server.ctx.metrics.numLayers;
  assert.equal(activations(text) - activations(before), (5 + 5) * 2 * layers);
});

test('with an expert cache: its hits and misses in /metrics and the dashboard figures', async () => {
  const cached = await startServer(dir, {}, { expertCacheSlots: 3 });
  try {
    const res = await fetch(`${cached.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', prompt: [1, 2, 3, 4, 5, 6], max_tokens: 8 }) });
    assert.equal(res.status, 200);
    const stats = (await (await fetch(`${cached.url}/dashboard/stats`)).json()) as { cache: { hits: number; misses: number } | null };
    assert.ok(stats.cache, 'the dashboard gets cache counters');
    assert.ok(stats.cache.misses > 0 && stats.cache.hits > 0, JSON.stringify(stats.cache));
    const text = await (await fetch(`${cached.url}/metrics`)).text();
    assert.equal(metricValue(text, 'moesaic_expert_cache_misses'), stats.cache.misses);
    assert.equal(metricValue(text, 'moesaic_expert_cache_hits'), stats.cache.hits);
  } finally {
    await cached.close();
  }
  // without a cache there are no cache metrics and the dashboard shows none
  assert.doesNotMatch(await (await fetch(`${srv.url}/metrics`)).text(), /moesaic_expert_cache_hits/);
  assert.equal(((await (await fetch(`${srv.url}/dashboard/stats`)).json()) as { cache: unknown }).cache, null);
});
