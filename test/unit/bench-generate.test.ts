// `moesaic bench generate` end to end without llama.cpp (issue 3): fresh child processes measure a tiny
// model; the JSON has one "moesaic" object with every figure, the bookkeeping and the greedy ids,
// which equal `moesaic generate` on the same prompt. Speed itself is never asserted.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { promptIds, specialTokenIds } from '../../src/bench/prompt.js';
import { readConfig } from '../../src/model/config.js';
import { cli, cliOk, genModel, removeDir, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-bench-generate-');
after(() => removeDir(root));

test('bench generate --json: shape, figures, and greedy ids equal to moesaic generate', () => {
  const dir = genModel(join(root, 'm'), 'mixtral', { dtype: 'bf16' });
  const out = JSON.parse(cliOk(['bench', 'generate', '--model', dir, '--prompt-tokens', '12', '--gen-tokens', '6', '--reps', '2', '--threads', '1', '--json'])) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(out), ['moesaic']);
  const m = out.moesaic!;
  for (const k of ['prefill_tok_s', 'ttft_ms', 'decode_tok_s', 'peak_rss_mib', 'decode_gb_s', 'prefill_gflop_s', 'memory_bandwidth_gb_s', 'decode_pct_of_bandwidth', 'decode_bytes_per_token', 'macs_per_token']) {
    assert.equal(typeof m[k], 'number', k);
    assert.ok((m[k] as number) > 0, `${k} = ${m[k]}`);
  }
  assert.equal((m.runs as unknown[]).length, 2);
  assert.equal(m.prompt_tokens, 12);
  assert.equal(m.gen_tokens, 6);
  assert.equal(m.threads, 1);

  const cfg = readConfig(dir);
  const prompt = promptIds(cfg.vocabSize, specialTokenIds(dir, cfg, () => new ArrayBuffer(0)), 12, 0);
  const gen = JSON.parse(cliOk(['generate', '--model', dir, '--ids', prompt.join(','), '--max-tokens', '6', '--no-eos', '--json'])) as { ids: number[] };
  assert.deepEqual(m.ids, gen.ids);
});

test('bench generate refuses a prompt + generation longer than the context', () => {
  const dir = genModel(join(root, 'c'), 'mixtral');
  const r = cli(['bench', 'generate', '--model', dir, '--prompt-tokens', '250', '--gen-tokens', '10']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /E_BAD_OPTION.*context/);
});
