// The official `openai` client (v6) against the server: completions and chat, streaming and not,
// usage and finish_reason, stop strings, and every bad request's status and OpenAI error body.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import OpenAI from 'openai';
import { genModel, removeDir, tempDir } from '../reference/harness.js';
import type { Running } from './serve-harness.js';
import { idle, startServer } from './serve-harness.js';

const root = tempDir('moesaic-serve-');
const dir = join(root, 'tiny');
let srv: Running;
let client: OpenAI;

before(async () => {
  await genModel(dir, 'mixtral', { seed: 11, dtype: 'f32' });
  srv = await startServer(dir, { apiKey: 'sk-test', maxQueue: 0, maxBatch: 4, maxStepTokens: 64 });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
});
after(async () => {
  await srv?.close();
  removeDir(root);
});

describe('openai client', () => {
  test('models lists the served model', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), ['tiny']);
  });

  test('completions: text, usage, finish_reason length; greedy is repeatable; streaming pieces add up to the same text', async () => {
    const a = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 12, temperature: 0 });
    const b = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 12, temperature: 0 });
    const choice = a.choices[0]!;
    assert.equal(choice.finish_reason, 'length');
    assert.equal(a.usage!.completion_tokens, 12);
    assert.ok(a.usage!.prompt_tokens > 0);
    assert.equal(a.usage!.total_tokens, a.usage!.prompt_tokens + 12);
    assert.equal(b.choices[0]!.text, choice.text);
    const stream = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, choice.text);
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, 12);
  });

  test('chat: a reply with the assistant role; streamed deltas equal the whole reply', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi there' },
    ];
    const whole = await client.chat.completions.create({ model: 'tiny', messages, max_completion_tokens: 10, seed: 3, temperature: 0.8, top_p: 0.9 });
    const msg = whole.choices[0]!.message;
    assert.equal(msg.role, 'assistant');
    assert.equal(whole.object, 'chat.completion');
    assert.equal(whole.usage!.completion_tokens <= 10, true);
    const stream = await client.chat.completions.create({ model: 'tiny', messages, max_completion_tokens: 10, seed: 3, temperature: 0.8, top_p: 0.9, stream: true });
    let text = '';
    let role: string | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0]!;
      role ??= c.delta.role;
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    assert.equal(role, 'assistant');
    assert.equal(text, msg.content);
    assert.equal(finish, whole.choices[0]!.finish_reason);
  });

  test('a stop string ends the text before it with finish_reason stop', async () => {
    const free = await client.completions.create({ model: 'tiny', prompt: 'abc', max_tokens: 24, temperature: 0 });
    const text = free.choices[0]!.text;
    const cut = text.slice(3, 5);
    assert.ok(cut.length === 2, `the greedy text is long enough: ${JSON.stringify(text)}`);
    const stopped = await client.completions.create({ model: 'tiny', prompt: 'abc', max_tokens: 24, temperature: 0, stop: [cut] });
    assert.equal(stopped.choices[0]!.finish_reason, 'stop');
    assert.equal(stopped.choices[0]!.text, text.slice(0, text.indexOf(cut)));
  });
});

/** Raw request -> status and parsed body. */
async function call(path: string, body: unknown, headers: Record<string, string> = { authorization: 'Bearer sk-test' }, method = 'POST'): Promise<{ status: number; body: { error?: { message: string; type: string; code: string | null; param: string | null } } }> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${srv.url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'GET' ? undefined : raw });
  return { status: res.status, body: (await res.json()) as never };
}

function assertError(r: Awaited<ReturnType<typeof call>>, status: number, type: string, match: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.ok(r.body.error, `no error object: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.type, type);
  assert.match(r.body.error.message, match);
  assert.doesNotMatch(JSON.stringify(r.body), /at .*\.js:\d+/, 'no stack trace');
}

describe('bad requests get their status and an OpenAI error body', () => {
  const ok = { model: 'tiny', prompt: 'hi', max_tokens: 2 };
  const cases: [string, unknown, number, string, RegExp][] = [
    ['n = 2', { ...ok, n: 2 }, 400, 'invalid_request_error', /\bn\b.*allowed: 1/],
    ['max_tokens as a string', { ...ok, max_tokens: '5' }, 400, 'invalid_request_error', /max_tokens must be integer/],
    ['max_tokens 0', { ...ok, max_tokens: 0 }, 400, 'invalid_request_error', /max_tokens must be >= 1/],
    ['temperature 3', { ...ok, temperature: 3 }, 400, 'invalid_request_error', /temperature must be <= 2/],
    ['top_p 0', { ...ok, top_p: 0 }, 400, 'invalid_request_error', /top_p must be > 0/],
    ['five stop strings', { ...ok, stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'invalid_request_error', /stop must NOT have more than 4 items/],
    ['no prompt', { model: 'tiny' }, 400, 'invalid_request_error', /prompt/],
    ['token id outside the vocabulary', { ...ok, prompt: [1, 99999] }, 400, 'invalid_request_error', /outside the vocabulary/],
    ['prompt longer than the context', { ...ok, prompt: Array.from({ length: 300 }, () => 5) }, 400, 'invalid_request_error', /context holds 256/],
    ['malformed JSON', '{"model": "tiny", ', 400, 'invalid_request_error', /invalid JSON/],
    ['unknown model', { ...ok, model: 'gpt-4' }, 404, 'not_found_error', /'gpt-4' does not exist/],
    ['oversized body', { ...ok, prompt: 'x'.repeat(2 << 20) }, 413, 'invalid_request_error', /too large/],
  ];
  for (const [name, body, status, type, match] of cases) {
    test(`${name} -> ${status}`, async () => assertError(await call('/v1/completions', body), status, type, match));
  }

  test('chat: bad role and empty messages -> 400', async () => {
    assertError(await call('/v1/chat/completions', { model: 'tiny', messages: [{ role: 'robot', content: 'x' }] }), 400, 'invalid_request_error', /role/);
    assertError(await call('/v1/chat/completions', { model: 'tiny', messages: [] }), 400, 'invalid_request_error', /messages/);
  });

  test('without the API key -> 401 (the client raises AuthenticationError); /health needs none', async () => {
    assertError(await call('/v1/completions', ok, {}), 401, 'authentication_error', /API key/);
    assertError(await call('/v1/completions', ok, { authorization: 'Bearer wrong' }), 401, 'authentication_error', /API key/);
    const bad = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
    assert.equal((await fetch(`${srv.url}/health`)).status, 200);
  });

  test('unknown route -> 404', async () => {
    assertError(await call('/v1/embeddings', ok), 404, 'not_found_error', /no route POST \/v1\/embeddings/);
  });

  test('a full queue -> 429 (RateLimitError); the running request is unaffected', async () => {
    // maxQueue 0: a request that cannot join the running batch at once is refused
    const busy = Array.from({ length: 4 }, () => client.completions.create({ model: 'tiny', prompt: 'long one', max_tokens: 240 }));
    const s = srv.server.ctx.scheduler;
    while (s.runningCount < 4) await new Promise((r) => setTimeout(r, 1)); // the batch (max 4) is full
    const refused = await call('/v1/completions', { ...ok, max_tokens: 1 });
    assertError(refused, 429, 'rate_limit_error', /queue is full/);
    await assert.rejects(client.completions.create({ ...ok }), OpenAI.RateLimitError);
    for (const r of await Promise.all(busy)) assert.equal(r.usage!.completion_tokens, 240);
    await idle(srv);
  });
});
