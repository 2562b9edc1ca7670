// Checkpoint files that are not what they should be: a FIFO (or any non-regular file) at a checkpoint
// path is refused instead of blocking forever, and each broken file is named in the error.
// Loading runs in a child process with a timeout, so a regression that blocks cannot hang the suite.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * openCheckpoint(path) for each path, all in one child process (10 s limit): ok, or the
 * MoesaicError's code and message. One child for all keeps the suite fast; if a regression blocks,
 * the child is killed and every test that needs it fails with "blocked".
 */
function openInChild(paths: readonly string[]): Opened[] {
  const mod = pathToFileURL(join(ROOT, 'dist', 'src', 'model', 'checkpoint.js')).href;
  const script = `
    import { readFileSync } from 'node:fs';
    const { openCheckpoint } = await import(${JSON.stringify(mod)});
    const map = (p) => { const b = readFileSync(p); return b.buffer.slice(b.byteOffset, b.byteOffset + b.length); };
    for (const path of process.argv.slice(1)) {
      try { openCheckpoint(path, map); console.log(JSON.stringify({ ok: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
    }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...paths], { encoding: 'utf8', timeout: 10_000 });
  assert.notEqual(r.signal, 'SIGTERM', `opening the ${paths.length} checkpoints blocked (killed after 10 s)`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line) as Opened);
}

/** Damaged checkpoints are made by the tests, then opened together, once, on first use. */
const pending: string[] = [];
let results: Map<string, Opened> | undefined;
function opened(path: string): Opened {
  if (!results) {
    const list = openInChild(pending);
    results = new Map(pending.map((p, i) => [p, list[i]!]));
  }
  const r = results.get(path);
  assert.ok(r, `${path} was not prepared`);
  return r;
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

// Each case damages a copy of a good checkpoint; all are opened together in one child process.
interface Case {
  name: string;
  make: () => string;
  code?: string;
  message?: RegExp;
}

const fifoCase = (file: string, src: () => string, message: RegExp): Case => ({
  name: `a FIFO at ${file} is refused, not read`,
  make: () => {
    const d = copyOf(src());
    fifoAt(join(d, file));
    return d;
  },
  message,
});
const indexCase = (name: string, weightMap: unknown, message: RegExp): Case => ({
  name,
  make: () => {
    const d = copyOf(sharded);
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    return d;
  },
  code: 'E_BAD_CHECKPOINT',
  message,
});
const vocabCase = (name: string, vocab: unknown, message: RegExp): Case => ({
  name,
  make: () => {
    const d = copyOf(good);
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocab)));
    return d;
  },
  code: 'E_BAD_CHECKPOINT',
  message,
});

const CASES: Case[] = [
  fifoCase('config.json', () => good, /config\.json is a FIFO \(named pipe\), not a regular file/),
  fifoCase('model.safetensors', () => good, /model\.safetensors is a FIFO \(named pipe\), not a regular file/),
  fifoCase('tokenizer.json', () => good, /tokenizer\.json is a FIFO \(named pipe\), not a regular file/),
  fifoCase('tokenizer_config.json', () => good, /tokenizer_config\.json is a FIFO/),
  fifoCase('model-00002-of-00002.safetensors', () => sharded, /model-00002-of-00002\.safetensors is a FIFO/),
  fifoCase('model.safetensors.index.json', () => sharded, /model\.safetensors\.index\.json is a FIFO/),
  {
    name: 'a FIFO given as the model file (.gguf) is refused',
    make: () => {
      const f = join(root, 'model.gguf');
      fifoAt(f);
      return f;
    },
    message: /model\.gguf is a FIFO/,
  },
  {
    name: 'a directory at model.safetensors is refused',
    make: () => {
      const d = copyOf(good);
      rmSync(join(d, 'model.safetensors'));
      mkdirSync(join(d, 'model.safetensors'));
      return d;
    },
    message: /model\.safetensors is a directory, not a regular file/,
  },
  indexCase('a weight_map that is an array is refused', ['model-00001-of-00002.safetensors'], /'weight_map' must be an object of tensor name -> shard file, got an array/),
  indexCase('an empty weight_map is refused', {}, /'weight_map' is empty/),
  indexCase('a weight_map entry that names no file is refused', { 'model.norm.weight': 3 }, /'weight_map' entry 'model\.norm\.weight' must name a shard file, got 3/),
  {
    name: 'a broken tokenizer_config.json is blamed on tokenizer_config.json, not tokenizer.json',
    make: () => {
      const d = copyOf(good);
      writeFileSync(join(d, 'tokenizer_config.json'), '{"model_max_length": 12,');
      return d;
    },
    code: 'E_BAD_CHECKPOINT',
    message: /tokenizer_config\.json is not valid JSON/,
  },
  vocabCase('a tokenizer.json whose vocab is a string is refused', 'abc', /tokenizer\.json: model\.vocab must be an object of token -> id .* got string/),
  vocabCase('a tokenizer.json with an empty vocab is refused', {}, /tokenizer\.json: model\.vocab is empty/),
  vocabCase('a tokenizer.json vocab with a non-integer id is refused', { a: 0, b: 'x' }, /token 'b' has id "x"/),
];

const made = new Map<Case, string>();
before(() => {
  for (const c of CASES) {
    const path = c.make();
    made.set(c, path);
    pending.push(path);
  }
});

test('the untouched checkpoints open (so the failures below come from the damage)', () => {
  assert.deepEqual(openInChild([good, sharded]), [{ ok: true }, { ok: true }]);
});

for (const c of CASES) {
  test(c.name, () => {
    const r = opened(made.get(c)!);
    if (c.code) assert.equal(r.code, c.code);
    assert.match(r.message ?? '', c.message ?? /./);
  });
}

test('permission denied on config.json says permission denied', (t) => {
  assert.equal(ioReason(Object.assign(new Error('EACCES: permission denied, open'), { code: 'EACCES' })), 'permission denied');
  if (process.getuid?.() === 0) {
    t.skip('running as root: file permissions do not apply, only the message mapping is checked');
    return;
  }
  const d = copyOf(good);
  chmodSync(join(d, 'config.json'), 0o000);
  const [r] = openInChild([d]);
  assert.equal(r!.code, 'E_IO');
  assert.match(r!.message ?? '', /config\.json: permission denied$/);
  assert.doesNotMatch(r!.message ?? '', /checkpoint folder/);
});
