// `moesaic bench generate` end to end without llama.cpp: fresh child processes measure a tiny
// model; the JSON has the bookkeeping and one "moesaic" object with every figure per thread count and the greedy ids,
// which equal `moesaic generate` on the same prompt. Speed itself is never asserted.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { promptIds, specialTokenIds } from '../../src/bench/prompt.js';
import { readConfig } from '../../src/model/config.js';
import { cli, cliOk, genModel, removeDir, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-bench-generate-');
after(() => removeDir(root));

test('bench generate --json: shape, figures, and greedy ids equal to moesaic generate', async () => {
  const dir = await genModel(join(root, 'm'), 'mixtral', { dtype: 'bf16' });
  const out = JSON.parse(cliOk(['bench', 'generate', '--model', dir, '--prompt-tokens', '12', '--gen-tokens', '6', '--reps', '2', '--threads', '1', '--json'])) as Record<string, unknown>;
  assert.equal('competitor' in out, false);
  for (const k of ['memory_bandwidth_gb_s', 'decode_bytes_per_token', 'macs_per_token', 'prefill_flops']) {
    assert.ok((out[k] as number) > 0, `${k} = ${String(out[k])}`);
  }
  assert.equal(out.prompt_tokens, 12);
  assert.equal(out.gen_tokens, 6);
  const m = out.moesaic as { by_threads: Record<string, unknown>[]; best_decode: { threads: number }; ids: number[]; build: string };
  assert.equal(m.by_threads.length, 1);
  assert.match(m.build, /decode: fused step/, 'the Mixtral decodes through the fused step, and the build line says so');
  const t = m.by_threads[0]!;
  for (const k of ['prefill_tok_s', 'ttft_ms', 'decode_tok_s', 'peak_rss_mib', 'decode_gb_s', 'prefill_gflop_s', 'memory_bandwidth_gb_s', 'decode_pct_of_bandwidth']) {
    assert.equal(typeof t[k], 'number', k);
    assert.ok((t[k] as number) > 0, `${k} = ${String(t[k])}`);
  }
  assert.equal((t.runs as unknown[]).length, 2);
  assert.equal(t.threads, 1);
  assert.equal(m.best_decode.threads, 1);

  const cfg = readConfig(dir);
  const prompt = promptIds(cfg.vocabSize, specialTokenIds(dir, cfg, () => new ArrayBuffer(0)), 12, 0);
  const gen = JSON.parse(cliOk(['generate', '--model', dir, '--ids', prompt.join(','), '--max-tokens', '6', '--no-eos', '--json'])) as { ids: number[] };
  assert.deepEqual(m.ids, gen.ids);
});

test('bench generate refuses a prompt + generation longer than the context', async () => {
  const dir = await genModel(join(root, 'c'), 'mixtral');
  const r = cli(['bench', 'generate', '--model', dir, '--prompt-tokens', '250', '--gen-tokens', '10']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /E_BAD_OPTION.*context/);
});
