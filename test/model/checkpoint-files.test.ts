// Checkpoint files that are not what they should be: a FIFO (or any non-regular file) at a checkpoint
// path is refused instead of blocking forever, and each broken file is named in the error.
// Loading runs in a child process with a timeout, so a regression that blocks cannot hang the suite.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ioReason } from '../../src/model/checkpoint-files.js';
import { writeRandomCheckpoint } from '../reference/checkpoint-tools.js';
import { removeDir, ROOT, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-ckpt-files-');
const good = join(root, 'good');
const sharded = join(root, 'sharded');
before(() => {
  writeRandomCheckpoint(good, 'mixtral', { seed: 3 });
  writeRandomCheckpoint(sharded, 'olmoe', { seed: 3, shards: 2 });
  writeFileSync(join(good, 'tokenizer.json'), JSON.stringify(tokenizerJson({ a: 0, b: 1, c: 2 })));
});
after(() => removeDir(root));

function tokenizerJson(vocab: unknown): object {
  return { version: '1.0', added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, model: { type: 'WordLevel', vocab, unk_token: 'a' } };
}

interface Opened {
  ok?: true;
  code?: string;
  message?: string;
}

/** openCheckpoint(path) in a child process (10 s limit): ok, or the MoesaicError's code and message. */
function openInChild(path: string): Opened {
  const mod = pathToFileURL(join(ROOT, 'dist', 'src', 'model', 'checkpoint.js')).href;
  const script = `
    import { readFileSync } from 'node:fs';
    const { openCheckpoint } = await import(${JSON.stringify(mod)});
    const map = (p) => { const b = readFileSync(p); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); };
    try { openCheckpoint(process.argv[1], map); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, path], { encoding: 'utf8', timeout: 10_000 });
  assert.notEqual(r.signal, 'SIGTERM', `opening ${path} blocked (killed after 10 s)`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Opened;
}

let n = 0;
function copyOf(src: string): string {
  const d = join(root, `case${n++}`);
  cpSync(src, d, { recursive: true });
  return d;
}

function fifoAt(path: string): void {
  rmSync(path, { force: true });
  execFileSync('mkfifo', [path]);
}

test('the untouched checkpoints open (so the failures below come from the damage)', () => {
  assert.deepEqual(openInChild(good), { ok: true });
  assert.deepEqual(openInChild(sharded), { ok: true });
});

for (const file of ['config.json', 'model.safetensors', 'tokenizer.json']) {
  test(`a FIFO at ${file} is refused, not read`, () => {
    const d = copyOf(good);
    fifoAt(join(d, file));
    const r = openInChild(d);
    assert.match(r.message ?? '', new RegExp(`${file} is a FIFO \\(named pipe\\), not a regular file`));
  });
}

test('a FIFO at tokenizer_config.json, at a shard or at the shard index is refused', () => {
  const d = copyOf(good);
  fifoAt(join(d, 'tokenizer_config.json'));
  assert.match(openInChild(d).message ?? '', /tokenizer_config\.json is a FIFO/);
  const s = copyOf(sharded);
  fifoAt(join(s, 'model-00002-of-00002.safetensors'));
  assert.match(openInChild(s).message ?? '', /model-00002-of-00002\.safetensors is a FIFO/);
  const i = copyOf(sharded);
  fifoAt(join(i, 'model.safetensors.index.json'));
  assert.match(openInChild(i).message ?? '', /model\.safetensors\.index\.json is a FIFO/);
});

test('a FIFO or a directory given as the model file is refused', () => {
  const f = join(root, 'model.gguf');
  fifoAt(f);
  assert.match(openInChild(f).message ?? '', /model\.gguf is a FIFO/);
  const d = copyOf(good);
  rmSync(join(d, 'model.safetensors'));
  mkdirSync(join(d, 'model.safetensors'));
  assert.match(openInChild(d).message ?? '', /model\.safetensors is a directory, not a regular file/);
});

test('a weight_map that is an array, empty, or names no file gets a clear error', () => {
  const cases: Array<[unknown, RegExp]> = [
    [['model-00001-of-00002.safetensors'], /'weight_map' must be an object of tensor name -> shard file, got an array/],
    [{}, /'weight_map' is empty/],
    [{ 'model.norm.weight': 3 }, /'weight_map' entry 'model\.norm\.weight' must name a shard file, got 3/],
  ];
  for (const [weightMap, message] of cases) {
    const d = copyOf(sharded);
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const r = openInChild(d);
    assert.equal(r.code, 'E_BAD_CHECKPOINT');
    assert.match(r.message ?? '', message);
  }
});

test('a broken tokenizer_config.json is blamed on tokenizer_config.json, not tokenizer.json', () => {
  const d = copyOf(good);
  writeFileSync(join(d, 'tokenizer_config.json'), '{"model_max_length": 12,');
  const r = openInChild(d);
  assert.equal(r.code, 'E_BAD_CHECKPOINT');
  assert.match(r.message ?? '', /tokenizer_config\.json is not valid JSON/);
});

test('a tokenizer.json whose vocab is a string (or empty) is refused, naming model.vocab', () => {
  for (const [vocab, message] of [
    ['abc', /tokenizer\.json: model\.vocab must be an object of token -> id .* got string/],
    [{}, /tokenizer\.json: model\.vocab is empty/],
    [{ a: 0, b: 'x' }, /token 'b' has id "x"/],
  ] as const) {
    const d = copyOf(good);
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocab)));
    const r = openInChild(d);
    assert.equal(r.code, 'E_BAD_CHECKPOINT');
    assert.match(r.message ?? '', message);
  }
});

test('permission denied on config.json says permission denied', (t) => {
  assert.equal(ioReason(Object.assign(new Error('EACCES: permission denied, open'), { code: 'EACCES' })), 'permission denied');
  if (process.getuid?.() === 0) {
    t.skip('running as root: file permissions do not apply, only the message mapping is checked');
    return;
  }
  const d = copyOf(good);
  chmodSync(join(d, 'config.json'), 0o000);
  const r = openInChild(d);
  assert.equal(r.code, 'E_IO');
  assert.match(r.message ?? '', /config\.json: permission denied$/);
  assert.doesNotMatch(r.message ?? '', /checkpoint folder/);
  assert.ok(readFileSync(join(good, 'config.json')).length > 0);
});
