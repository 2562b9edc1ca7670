// OpenAI request fields beyond sampling: every field that would change the answer but is not
// implemented gets a 400 naming it, while its neutral default is accepted and changes nothing;
// `echo`; and `prompt` in each of OpenAI's forms (one prompt only).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import OpenAI from 'openai';
import { genModel, removeDir, tempDir } from '../reference/harness.js';
import type { Running } from './serve-harness.js';
import { startServer } from './serve-harness.js';

const root = tempDir('moesaic-serve-fields-');
const dir = join(root, 'tiny');
let srv: Running;
let client: OpenAI;

before(async () => {
  await genModel(dir, 'mixtral', { seed: 5, dtype: 'f32' });
  srv = await startServer(dir);
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
});
after(async () => {
  await srv?.close();
  removeDir(root);
});

interface Reply {
  status: number;
  body: { choices?: { text?: string; message?: { content: string }; token_ids?: number[] }[]; error?: { message: string; type: string; param: string | null; code: string | null } };
}

async function post(path: string, body: unknown): Promise<Reply> {
  const res = await fetch(`${srv.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Reply['body'] };
}

const completion = { model: 'tiny', prompt: 'hello world', max_tokens: 6, temperature: 0, return_token_ids: true };
const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hello world' }], max_tokens: 6, temperature: 0, return_token_ids: true };

/** [field, a value asking for something not implemented, its neutral values] */
const FIELDS: [string, unknown, unknown[]][] = [
  ['logprobs', true, [false, null]],
  ['top_logprobs', 3, [0, null]],
  ['best_of', 2, [1, null]],
  ['suffix', ' end', ['', null]],
  ['presence_penalty', 0.5, [0, null]],
  ['frequency_penalty', -1, [0, null]],
  ['repetition_penalty', 1.2, [1, null]],
  ['top_k', 1, [0, -1, null]],
  ['min_p', 0.5, [0, null]],
  ['min_tokens', 3, [0, null]],
  ['stop_token_ids', [116], [[], null]],
  ['logit_bias', { '5': 100 }, [{}, null]],
  ['tools', [{ type: 'function', function: { name: 'f', parameters: {} } }], [[], null]],
  ['functions', [{ name: 'f' }], [[], null]],
  ['tool_choice', 'required', ['none', 'auto', null]],
  ['function_call', { name: 'f' }, ['none', 'auto', null]],
  ['response_format', { type: 'json_object' }, [{ type: 'text' }, null]],
  ['modalities', ['text', 'audio'], [['text'], null]],
  ['audio', { voice: 'alloy', format: 'wav' }, [null]],
  ['web_search_options', {}, [null]],
];

describe('fields that would change the answer', () => {
  for (const [path, base] of [['/v1/completions', completion], ['/v1/chat/completions', chat]] as const) {
    for (const [field, asked, neutral] of FIELDS) {
      test(`${path} ${field}: ${JSON.stringify(asked)} -> 400 naming it; neutral ${JSON.stringify(neutral)} accepted with the same answer`, async () => {
        const r = await post(path, { ...base, [field]: asked });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.error?.type, 'invalid_request_error');
        assert.equal(r.body.error?.param, field);
        assert.match(r.body.error!.message, new RegExp(`^${field} = .* is not supported`));
        const plain = await post(path, base);
        assert.equal(plain.status, 200);
        for (const v of neutral) {
          const ok = await post(path, { ...base, [field]: v });
          assert.equal(ok.status, 200, `${field} = ${JSON.stringify(v)}: ${JSON.stringify(ok.body)}`);
          assert.deepEqual(ok.body.choices![0]!.token_ids, plain.body.choices![0]!.token_ids);
        }
      });
    }
  }

  test('the official client raises BadRequestError for logprobs', async () => {
    await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'hi', max_tokens: 2, logprobs: 2 }), (e: unknown) => e instanceof OpenAI.BadRequestError && /logprobs/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, logprobs: true, top_logprobs: 2 }), OpenAI.BadRequestError);
  });
});

describe('echo', () => {
  test('the text starts with the prompt, then the same completion as without echo; streamed the same way', async () => {
    const plain = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 8, temperature: 0 });
    const echoed = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 8, temperature: 0, echo: true });
    assert.equal(echoed.choices[0]!.text, `hello world${plain.choices[0]!.text}`);
    assert.deepEqual(echoed.usage, plain.usage);
    const stream = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 8, temperature: 0, echo: true, stream: true });
    const pieces: string[] = [];
    for await (const chunk of stream) pieces.push(...chunk.choices.map((c) => c.text));
    assert.equal(pieces[0], 'hello world', 'the prompt is the first chunk');
    assert.equal(pieces.join(''), echoed.choices[0]!.text);
    const off = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 8, temperature: 0, echo: false });
    assert.equal(off.choices[0]!.text, plain.choices[0]!.text);
  });

  test('a token-id prompt is echoed as its decoded text', async () => {
    const ids = srv.server.ctx.encode!('the quick fox');
    const plain = await client.completions.create({ model: 'tiny', prompt: 'the quick fox', max_tokens: 5, temperature: 0 });
    const echoed = await client.completions.create({ model: 'tiny', prompt: ids, max_tokens: 5, temperature: 0, echo: true });
    assert.equal(echoed.choices[0]!.text, `the quick fox${plain.choices[0]!.text}`);
  });
});

describe('prompt forms', () => {
  test('a string, a list of one string, token ids and a list of one list of ids give the same answer', async () => {
    const ids = srv.server.ctx.encode!('hello world');
    const answers = [];
    for (const prompt of ['hello world', ['hello world'], ids, [ids]]) {
      const r = await post('/v1/completions', { ...completion, prompt });
      assert.equal(r.status, 200, `${JSON.stringify(prompt)}: ${JSON.stringify(r.body)}`);
      answers.push(r.body.choices![0]!.token_ids);
    }
    for (const a of answers.slice(1)) assert.deepEqual(a, answers[0]);
    const viaClient = await client.completions.create({ model: 'tiny', prompt: ['hello world'], max_tokens: 6, temperature: 0 });
    assert.equal(viaClient.choices.length, 1);
  });

  const bad: [string, unknown, RegExp][] = [
    ['two strings', ['a', 'b'], /prompt holds 2 prompts; .* send them as 2 requests/],
    ['three lists of ids', [[1, 2], [3], [4]], /prompt holds 3 prompts/],
    ['an empty list', [], /prompt/],
    ['a list of one empty list', [[]], /prompt/],
    ['a mixed list', ['a', 5], /^invalid request: prompt must be a string, an array of token ids \(integers >= 0\), or a list of one string or of one array of token ids$/],
    ['a number', 5, /^invalid request: prompt must be a string, an array of token ids/],
    ['a list of one empty string', [''], /prompt/],
  ];
  for (const [name, prompt, match] of bad) {
    test(`${name} -> 400 naming prompt`, async () => {
      const r = await post('/v1/completions', { ...completion, prompt });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error?.type, 'invalid_request_error');
      assert.match(r.body.error?.param ?? '', /^prompt\b/); // the element, where one is at fault: prompt.0
      assert.match(r.body.error!.message, match);
    });
  }
});
