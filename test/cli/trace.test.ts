import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const bin = join(process.cwd(), 'bin', 'moesaic.js');
const dir = mkdtempSync(join(tmpdir(), 'moesaic-trace-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('moesaic trace records one record per step and MoE layer, matching the routing that generated the text', () => {
  const model = join(dir, 'm');
  run('gen-model', '--arch', 'qwen2_moe', '--size', 'tiny', '--out', model, '--skew', '2');
  const prompts = join(dir, 'prompts.txt');
  writeFileSync(prompts, 'the cat sat\nexperts route tokens\nhello\n');
  const out = join(dir, 't.jsonl.gz');
  run('trace', '--model', model, '--prompts-file', prompts, '--batch', '2', '--max-tokens', '3', '--out', out);
  const lines = gunzipSync(readFileSync(out)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
  const header = lines[0];
  const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
  // qwen2_moe tiny: layer 1 is dense (mlp_only_layers), so it must not appear
  const moeLayers = [...Array(cfg.num_hidden_layers).keys()].filter((l) => !cfg.mlp_only_layers.includes(l));
  assert.deepEqual(header.moe_layers, moeLayers);
  assert.equal(header.num_experts, cfg.num_experts);
  assert.equal(header.top_k, cfg.num_experts_per_tok);
  const records = lines.slice(1);
  for (const r of records) {
    assert.ok(moeLayers.includes(r.layer));
    for (const e of r.experts) {
      assert.equal(e.length, cfg.num_experts_per_tok);
      assert.equal(new Set(e).size, e.length, 'distinct experts per token');
    }
  }
  // batch 1 (2 prompts): a prefill step, then 2 decode steps of 2 tokens; batch 2 (1 prompt): prefill + 2 steps of 1
  const steps = [...new Set(records.map((r) => r.step))];
  assert.equal(steps.length, 6);
  const tokensPerStep = steps.map((s) => records.find((r) => r.step === s)!.experts.length);
  assert.deepEqual(tokensPerStep.slice(1, 3), [2, 2]);
  assert.deepEqual(tokensPerStep.slice(4), [1, 1]);
  assert.equal(records.length, steps.length * moeLayers.length);
});

test('a failing trace run leaves no file behind', () => {
  const out = join(dir, 'bad.jsonl');
  const r = spawnSync(process.execPath, [bin, 'trace', '--model', join(dir, 'missing'), '--ids', '1,2', '--out', out], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /missing/);
  assert.ok(!existsSync(out) && !existsSync(`${out}.tmp`));
});
