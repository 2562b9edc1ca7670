// Bad input gives a clear one-line error naming the file / tensor / field, a non-zero exit, and no
// stack trace (corrupt or truncated safetensors, a missing tensor, an
// unsupported model_type, ids outside the vocabulary, a prompt longer than the context, bad options).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rewriteWithout } from '../reference/checkpoint-tools.js';
import { cli, genModel, hasStackTrace, removeDir, tempDir, type CliResult } from '../reference/harness.js';

const root = tempDir('moesaic-errors-');
const good = join(root, 'good');
let vocab = 0;

before(async () => {
  await genModel(good, 'mixtral', { seed: 1 });
  vocab = (JSON.parse(readFileSync(join(good, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
});
after(() => removeDir(root));

let n = 0;
/** A fresh copy of the good checkpoint to break. */
function copy(): string {
  const d = join(root, `case${n++}`);
  cpSync(good, d, { recursive: true });
  return d;
}

function editConfig(dir: string, patch: Record<string, unknown>): void {
  const p = join(dir, 'config.json');
  writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), ...patch }, null, 2));
}

/** Non-zero exit, stderr mentions every `needles` entry (case-insensitive), no stack trace, no stdout JSON. */
function expectError(r: CliResult, needles: Array<string | RegExp>, what: string): void {
  assert.notEqual(r.code, 0, `${what}: expected a non-zero exit, got ${r.code}; stdout ${r.stdout.slice(0, 200)}`);
  const err = r.stderr;
  assert.ok(err.trim().length > 0, `${what}: empty stderr`);
  for (const n of needles) {
    const ok = typeof n === 'string' ? err.toLowerCase().includes(n.toLowerCase()) : n.test(err);
    assert.ok(ok, `${what}: stderr should mention ${String(n)}; got: ${err}`);
  }
  assert.ok(!hasStackTrace(err), `${what}: stack trace printed: ${err}`);
  assert.ok(!/"logits"\s*:/.test(r.stdout), `${what}: logits printed despite the error`);
}

test('the untouched checkpoint works (so the failures below are caused by the damage)', () => {
  const r = cli(['logits', '--model', good, '--ids', '1,2,3']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { logits: number[][] }).logits.length, 3);
});

test('truncated model.safetensors', () => {
  const d = copy();
  const p = join(d, 'model.safetensors');
  const buf = readFileSync(p);
  writeFileSync(p, buf.subarray(0, Math.floor(buf.length * 0.6)));
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), ['model.safetensors', 'E_BAD_CHECKPOINT'], 'truncated file');
});

test('truncated inside the header', () => {
  const d = copy();
  const p = join(d, 'model.safetensors');
  writeFileSync(p, readFileSync(p).subarray(0, 20));
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), ['model.safetensors', 'E_BAD_CHECKPOINT'], 'truncated header');
});

test('corrupt header (garbage JSON of the same length)', () => {
  const d = copy();
  const p = join(d, 'model.safetensors');
  const buf = readFileSync(p);
  const hl = Number(buf.readBigUInt64LE(0));
  buf.fill(0x7b /* '{' */, 8, 8 + Math.min(hl, 64));
  buf.write('garbage!', 8 + 1, 'latin1');
  writeFileSync(p, buf);
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), ['model.safetensors', 'E_BAD_CHECKPOINT'], 'corrupt header');
});

test('absurd header length', () => {
  const d = copy();
  const p = join(d, 'model.safetensors');
  const buf = readFileSync(p);
  buf.writeBigUInt64LE(BigInt(buf.length) * 16n, 0);
  writeFileSync(p, buf);
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), ['model.safetensors', 'E_BAD_CHECKPOINT'], 'header length past end');
});

test('a missing tensor is named', () => {
  const d = copy();
  const name = 'model.layers.1.self_attn.o_proj.weight';
  rewriteWithout(join(good, 'model.safetensors'), join(d, 'model.safetensors'), name);
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), [name, 'E_MISSING_TENSOR'], 'missing tensor');
  // the same through generate
  expectError(cli(['generate', '--model', d, '--ids', '1,2,3', '--max-tokens', '2']), [name, 'E_MISSING_TENSOR'], 'missing tensor (generate)');
});

test('a missing expert tensor is named', () => {
  const d = copy();
  const name = 'model.layers.0.block_sparse_moe.experts.5.w2.weight';
  rewriteWithout(join(good, 'model.safetensors'), join(d, 'model.safetensors'), name);
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), [name, 'E_MISSING_TENSOR'], 'missing expert tensor');
});

test('unsupported model_type', () => {
  const d = copy();
  editConfig(d, { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] });
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), ['gpt2', 'E_UNSUPPORTED_ARCH'], 'unsupported model_type');
});

test('malformed config.json', () => {
  const d = copy();
  writeFileSync(join(d, 'config.json'), '{"model_type": "mixtral", ');
  expectError(cli(['logits', '--model', d, '--ids', '1,2,3']), ['config.json', 'E_BAD_CONFIG'], 'malformed config.json');
});

test('token id >= vocab_size (logits and generate)', () => {
  expectError(cli(['logits', '--model', good, '--ids', `1,${vocab},3`]), [String(vocab), 'E_BAD_INPUT'], 'id = vocab_size');
  expectError(
    cli(['generate', '--model', good, '--ids', `1,${vocab + 10}`, '--max-tokens', '2']),
    [String(vocab + 10), 'E_BAD_INPUT'],
    'id > vocab_size (generate)',
  );
});

test('negative or non-integer token ids', () => {
  expectError(cli(['logits', '--model', good, '--ids', '1,-4,3']), [/-4|ids/i, /E_BAD_(OPTION|INPUT)/], 'negative id');
  expectError(cli(['logits', '--model', good, '--ids', '1,abc']), [/abc|ids/i, /E_BAD_(OPTION|INPUT)/], 'non-numeric id');
});

test('prompt longer than max_position_embeddings', () => {
  const d = copy();
  editConfig(d, { max_position_embeddings: 8 });
  const ids = Array.from({ length: 12 }, (_, i) => i + 3).join(',');
  expectError(cli(['logits', '--model', d, '--ids', ids]), [/max_position_embeddings|context/i, 'E_BAD_INPUT'], 'prompt too long (logits)');
  expectError(
    cli(['generate', '--model', d, '--ids', ids, '--max-tokens', '2']),
    [/max_position_embeddings|context/i, 'E_BAD_INPUT'],
    'prompt too long (generate)',
  );
});

test('missing --model directory is named', () => {
  const missing = join(root, 'no-such-model');
  expectError(cli(['logits', '--model', missing, '--ids', '1,2']), ['no-such-model', /E_(IO|BAD_CONFIG|BAD_CHECKPOINT)/], 'missing model dir');
  expectError(cli(['generate', '--model', missing, '--ids', '1,2']), ['no-such-model'], 'missing model dir (generate)');
});

test('model dir without config.json', () => {
  const d = copy();
  rmSync(join(d, 'config.json'));
  expectError(cli(['logits', '--model', d, '--ids', '1,2']), ['config.json', 'E_BAD_CONFIG'], 'no config.json');
});

test('--max-tokens -1 is rejected', () => {
  expectError(cli(['generate', '--model', good, '--ids', '1,2', '--max-tokens', '-1']), [/max-tokens/i, 'E_BAD_OPTION'], '--max-tokens -1');
});

test('a sharded checkpoint with a missing shard names the shard', async () => {
  const d = join(root, 'sharded');
  await genModel(d, 'olmoe', { seed: 2, shardMb: 0.25 });
  const index = JSON.parse(readFileSync(join(d, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const shard = [...new Set(Object.values(index.weight_map))].sort()[1];
  assert.ok(shard, 'at least two shards');
  rmSync(join(d, shard));
  expectError(cli(['logits', '--model', d, '--ids', '1,2']), [shard, /E_(BAD_CHECKPOINT|IO)/], 'missing shard');
});

test('empty --ids and a missing --model option', () => {
  expectError(cli(['logits', '--model', good, '--ids', '']), [/ids/i, /E_BAD_(OPTION|INPUT)/], 'empty --ids');
  expectError(cli(['logits', '--ids', '1,2']), ['--model'], 'no --model (logits)');
  expectError(cli(['generate', '--ids', '1,2']), ['--model'], 'no --model (generate)');
});

test('command-line parser errors use the same one-line format and exit code', () => {
  for (const [args, needle] of [
    [['logits', '--model', good, '--ids', '1', '--bogus'], "unknown option '--bogus'"],
    [['gen-model', '--arch', 'mixtral', '--size', 'tiny'], "required option '--out <dir>' not specified"],
    [['no-such-command'], "unknown command 'no-such-command'"],
  ] as const) {
    const r = cli([...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: exit code`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: one line, got ${r.stderr}`);
    assert.ok(lines[0]!.startsWith('moesaic: error [E_BAD_OPTION]: ') && lines[0]!.includes(needle), lines[0]);
  }
});

test('non-finite logits (broken weights) are an error, not invalid JSON', () => {
  const dir = copy();
  const path = join(dir, 'model.safetensors');
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const norm = header['model.norm.weight']!;
  assert.equal(norm.dtype, 'F32');
  buf.writeFloatLE(Number.NaN, 8 + headerLen + norm.data_offsets[0]);
  writeFileSync(path, buf);
  expectError(cli(['logits', '--model', dir, '--ids', '1,2']), ['E_BAD_CHECKPOINT', 'non-finite'], 'NaN weight');
  // the same check, in the step loop, for every command that generates
  expectError(cli(['generate', '--model', dir, '--ids', '1,2', '--json']), ['E_BAD_CHECKPOINT', 'non-finite'], 'NaN weight (generate)');
  expectError(cli(['trace', '--model', dir, '--ids', '1,2', '--out', join(dir, 't.jsonl')]), ['E_BAD_CHECKPOINT', 'non-finite'], 'NaN weight (trace)');
});
