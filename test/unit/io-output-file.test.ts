// The atomic writer (src/io): every output appears complete or not at all, never through a shared
// temporary name, and never by replacing a device, FIFO or symlink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MoesaicError } from '../../src/errors.js';
import { OutputFile, writeOutputFile } from '../../src/io/atomic-writer.js';
import { OutputDir } from '../../src/io/output-dir.js';
import { TraceWriter } from '../../src/trace/format.js';
import { readTrace } from '../../src/trace/format.js';

function withDir(fn: (dir: string) => void | Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moesaic-io-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const hidden = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('.'));
const isIoError = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof MoesaicError && e.code === 'E_IO', String(e));
  assert.match(e.message, pattern);
  return true;
};

test('a file appears only at commit, keeps the mode of the file it replaces, and leaves no temporary', withDir((dir) => {
  const path = join(dir, 'out.txt');
  writeFileSync(path, 'old');
  chmodSync(path, 0o640);
  const out = new OutputFile(path);
  out.write('new ');
  out.write(new Uint8Array([0x61, 0x62]));
  assert.equal(readFileSync(path, 'utf8'), 'old', 'the destination is untouched until commit');
  assert.equal(hidden(dir).length, 1, 'one temporary beside it');
  out.commit();
  assert.equal(readFileSync(path, 'utf8'), 'new ab');
  assert.equal(statSync(path).mode & 0o777, 0o640);
  assert.deepEqual(hidden(dir), []);
}));

test('abort leaves the destination as it was', withDir((dir) => {
  const path = join(dir, 'out.txt');
  writeFileSync(path, 'keep');
  const out = new OutputFile(path);
  out.write('lost');
  out.abort();
  assert.equal(readFileSync(path, 'utf8'), 'keep');
  assert.deepEqual(hidden(dir), []);
}));

test('two writers of one output never mix: the second commit fails and the first one\'s data stays', withDir(async (dir) => {
  const path = join(dir, 't.jsonl');
  const header = { moesaic_trace: 1 as const, model: 'm', num_layers: 1, moe_layers: [0], num_experts: 4, top_k: 1 };
  const a = new TraceWriter(path, { ...header, model: 'a' });
  const b = new TraceWriter(path, { ...header, model: 'b' });
  a.write({ step: 0, layer: 0, experts: [[1]] });
  b.write({ step: 0, layer: 0, experts: [[2], [3]] });
  await a.close();
  await assert.rejects(b.close(), isIoError(/changed while this run was writing it/));
  const t = await readTrace(path);
  assert.equal(t.header.model, 'a');
  const records = [];
  for await (const r of t.records) records.push(r);
  assert.deepEqual(records, [{ step: 0, layer: 0, experts: [[1]] }]);
  assert.deepEqual(hidden(dir), []);
}));

test('a destination created meanwhile is not overwritten', withDir((dir) => {
  const path = join(dir, 'r.json');
  const out = new OutputFile(path);
  out.write('{"mine":1}');
  writeFileSync(path, 'someone else');
  assert.throws(() => out.commit(), isIoError(/changed while this run was writing it/));
  assert.equal(readFileSync(path, 'utf8'), 'someone else');
  assert.deepEqual(hidden(dir), []);
}));

test('a symlinked file keeps its link; the file it points to is replaced', withDir((dir) => {
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real', 'data.json'), 'old');
  symlinkSync(join(dir, 'real', 'data.json'), join(dir, 'link.json'));
  writeOutputFile(join(dir, 'link.json'), 'new');
  assert.ok(lstatSync(join(dir, 'link.json')).isSymbolicLink());
  assert.equal(readFileSync(join(dir, 'real', 'data.json'), 'utf8'), 'new');
  // a dangling link: its target is created, the link kept
  symlinkSync(join(dir, 'real', 'later.json'), join(dir, 'dangling.json'));
  writeOutputFile(join(dir, 'dangling.json'), 'made');
  assert.equal(readlinkSync(join(dir, 'dangling.json')), join(dir, 'real', 'later.json'));
  assert.equal(readFileSync(join(dir, 'real', 'later.json'), 'utf8'), 'made');
  assert.deepEqual(hidden(dir), []);
  assert.deepEqual(hidden(join(dir, 'real')), []);
}));

test('a symlinked folder output keeps its link; the folder it points to is replaced', withDir((dir) => {
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real', 'old.txt'), 'old');
  symlinkSync(join(dir, 'real'), join(dir, 'link'));
  const out = new OutputDir(join(dir, 'link'));
  writeFileSync(join(out.tmp, 'new.txt'), 'new');
  out.commit();
  assert.ok(lstatSync(join(dir, 'link')).isSymbolicLink());
  assert.deepEqual(readdirSync(join(dir, 'real')), ['new.txt']);
  assert.deepEqual(hidden(dir), []);
}));

test('a device is written directly, not replaced', () => {
  writeOutputFile('/dev/null', 'discarded');
  assert.ok(lstatSync('/dev/null').isCharacterDevice());
  assert.throws(() => writeOutputFile('/dev/full', 'x'.repeat(10)), isIoError(/ENOSPC/));
  assert.ok(lstatSync('/dev/full').isCharacterDevice());
});

test('a folder where a file should go, or a missing folder, is a one-line E_IO error', withDir((dir) => {
  assert.throws(() => new OutputFile(dir, `--out ${dir}`), isIoError(/is a folder, expected a file/));
  assert.throws(() => new OutputFile(join(dir, 'no', 'x.json')), isIoError(/ENOENT/));
  assert.deepEqual(readdirSync(dir), []);
}));
