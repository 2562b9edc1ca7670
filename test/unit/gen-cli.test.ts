import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'moesaic.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, 'gen-model', ...args], { encoding: 'utf8' });

test('gen-model CLI writes a model with the given options', () => {
  const root = mkdtempSync(join(tmpdir(), 'moesaic-gen-cli-'));
  try {
    const out = join(root, 'model');
    const r = run(['--arch', 'qwen2_moe', '--size', 'tiny', '--out', out, '--seed', '4', '--dtype', 'bf16', '--skew', '0.5', '--shard-mb', '0.3', '--experts', '12', '--layers', '2']);
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(out);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors.index.json']) {
      assert.ok(files.includes(f), `missing ${f}`);
    }
    assert.ok(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 2);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual([config.torch_dtype, config.num_experts, config.num_hidden_layers], ['bfloat16', 12, 2]);
    const marker = JSON.parse(readFileSync(join(out, 'moesaic-gen.json'), 'utf8'));
    assert.deepEqual([marker.seed, marker.skew, marker.dtype, marker.experts, marker.layers], [4, 0.5, 'bf16', 12, 2]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('gen-model CLI rejects bad options with a non-zero exit and a message naming the option', () => {
  const root = mkdtempSync(join(tmpdir(), 'moesaic-gen-cli-'));
  try {
    const out = join(root, 'never');
    const cases: [string[], RegExp][] = [
      [['--arch', 'mixtral', '--size', 'huge', '--out', out], /--size must be one of tiny\|small\|bench, got 'huge'/],
      [['--arch', 'mixtral', '--size', 'tiny', '--out', out, '--skew', '-1'], /--skew/],
      [['--arch', 'gpt2', '--size', 'tiny', '--out', out], /--arch must be one of .*got 'gpt2'/],
      [['--arch', 'mixtral', '--size', 'tiny', '--out', out, '--dtype', 'f16'], /--dtype/],
      [['--arch', 'mixtral', '--size', 'tiny', '--out', out, '--seed', 'x'], /--seed/],
      [['--arch', 'mixtral', '--size', 'tiny'], /--out/],
      [['--arch', 'mixtral', '--size', 'tiny', '--out', out, '--experts', '1'], /--experts must be an integer in \[2, 1024\], got '1'/],
      [['--arch', 'mixtral', '--size', 'tiny', '--out', out, '--layers', '1.5'], /--layers must be an integer in \[1, 256\]/],
    ];
    for (const [args, re] of cases) {
      const r = run(args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'stack trace printed');
    }
    assert.ok(!existsSync(out));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
