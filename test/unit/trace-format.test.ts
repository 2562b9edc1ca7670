import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readActivity } from '../../src/trace/activity.js';
import { readTrace, TraceWriter, type TraceHeader, type TraceRecord } from '../../src/trace/format.js';
import { MoesaicError } from '../../src/errors.js';

const HEADER: TraceHeader = { moesaic_trace: 1, model: 'tiny', num_layers: 4, moe_layers: [1, 3], num_experts: 4, top_k: 2 };
const RECORDS: TraceRecord[] = [
  { step: 0, layer: 1, experts: [[0, 1], [3, 0]], weights: [[0.75, 0.25], [0.5, 0.5]] },
  { step: 0, layer: 3, experts: [[2, 3]] },
  { step: 1, layer: 1, experts: [[1, 2], [2, 1], [3, 2]] },
  { step: 1, layer: 3, experts: [] },
  { step: 4, layer: 3, experts: [[0, 3]] },
];

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moesaic-trace-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

async function readAll(path: string): Promise<{ header: TraceHeader; records: TraceRecord[] }> {
  const { header, records } = await readTrace(path);
  const out: TraceRecord[] = [];
  for await (const r of records) out.push(r);
  return { header, records: out };
}

async function badTrace(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(readAll(path), (e: unknown) => {
    assert.ok(e instanceof MoesaicError, String(e));
    assert.equal(e.code, 'E_BAD_TRACE');
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
    return true;
  });
}

test('TraceWriter and readTrace round-trip, plain and gzip; a temporary until close', withDir(async (dir) => {
  for (const name of ['t.jsonl', 't.jsonl.gz']) {
    const path = join(dir, name);
    const w = new TraceWriter(path, HEADER);
    for (const r of RECORDS) w.write(r);
    assert.ok(!existsSync(path), 'nothing at the destination before close');
    assert.equal(readdirSync(dir).filter((f) => f.startsWith(`.${name}.moesaic-tmp-`)).length, 1);
    await w.close();
    assert.ok(existsSync(path));
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temporary left');
    const raw = readFileSync(path);
    assert.equal(raw[0] === 0x1f && raw[1] === 0x8b, name.endsWith('.gz'), 'gzip exactly when the name ends in .gz');
    assert.deepEqual(await readAll(path), { header: HEADER, records: RECORDS });
  }
  // gzip detected by magic bytes when the name has no .gz
  renameSync(join(dir, 't.jsonl.gz'), join(dir, 'renamed.jsonl'));
  assert.deepEqual((await readAll(join(dir, 'renamed.jsonl'))).records, RECORDS);
}));

test('a hand-written file with blank lines and CRLF reads; several gzip members read as one', withDir(async (dir) => {
  const lines = [JSON.stringify(HEADER), '', JSON.stringify(RECORDS[1]), JSON.stringify(RECORDS[2])];
  const plain = join(dir, 'a.jsonl');
  writeFileSync(plain, lines.join('\r\n') + '\r\n\r\n');
  assert.deepEqual((await readAll(plain)).records, [RECORDS[1], RECORDS[2]]);
  const gz = join(dir, 'b.jsonl.gz');
  writeFileSync(gz, Buffer.concat([gzipSync(lines[0] + '\n'), gzipSync(lines.slice(2).join('\n') + '\n')]));
  assert.deepEqual((await readAll(gz)).records, [RECORDS[1], RECORDS[2]]);
}));

test('readActivity reduces records to active experts with counts', withDir(async (dir) => {
  const path = join(dir, 'a.jsonl');
  const w = new TraceWriter(path, HEADER);
  for (const r of RECORDS) w.write(r);
  await w.close();
  const a = await readActivity(path);
  assert.deepEqual(a.layers.map((l) => l.layer), [1, 3]);
  const [l1, l3] = a.layers;
  // layer 1: step 0 tokens [0,1],[3,0] -> 0:2 1:1 3:1; step 1 [1,2],[2,1],[3,2] -> 1:2 2:3 3:1
  assert.deepEqual(Array.from(l1.steps), [0, 1]);
  assert.deepEqual(Array.from(l1.tokens), [2, 3]);
  assert.deepEqual(Array.from(l1.offsets), [0, 3, 6]);
  assert.deepEqual(Array.from(l1.experts), [0, 1, 3, 1, 2, 3]);
  assert.deepEqual(Array.from(l1.counts), [2, 1, 1, 2, 3, 1]);
  // layer 3: the empty step 1 is dropped
  assert.deepEqual(Array.from(l3.steps), [0, 4]);
  assert.deepEqual(Array.from(l3.experts), [2, 3, 0, 3]);
}));

test('malformed traces are E_BAD_TRACE naming the file and line', withDir(async (dir) => {
  const h = JSON.stringify(HEADER);
  const write = (name: string, lines: string[]): string => {
    const p = join(dir, name);
    writeFileSync(p, lines.join('\n') + '\n');
    return p;
  };
  const rec = (r: object) => JSON.stringify(r);
  await badTrace(write('json.jsonl', [h, rec(RECORDS[0]), '{"step": 1, "layer": 1, "experts": [[0,1]', rec(RECORDS[1])]), /line 3: not valid JSON/);
  await badTrace(write('range.jsonl', [h, rec(RECORDS[0]), rec({ step: 1, layer: 1, experts: [[0, 4]] })]), /line 3: "experts"\[0\]\[1\] = 4 is not an expert id in \[0, 3\]/);
  await badTrace(write('nohdr.jsonl', [rec(RECORDS[0])]), /line 1: bad header: missing header/);
  await badTrace(write('empty.jsonl', []), /missing header/);
  // a header of another format version is a header: say which version, not "missing header"
  const v2 = write('v2.jsonl', [JSON.stringify({ ...HEADER, moesaic_trace: 2 }), rec(RECORDS[0])]);
  await badTrace(v2, /line 1: bad header: trace format version 2 is not supported \(this moesaic reads version 1\)/);
  await assert.rejects(readTrace(v2), (e: unknown) => !/missing header/.test((e as Error).message));
  await badTrace(write('vstr.jsonl', [JSON.stringify({ ...HEADER, moesaic_trace: '1' })]), /line 1: bad header: "moesaic_trace" must be the integer format version, got "1"/);
  await badTrace(write('k.jsonl', [h, rec({ step: 0, layer: 1, experts: [[0, 1], [2]] })]), /line 2: "experts"\[1\] must be an array of top_k = 2/);
  await badTrace(write('dup.jsonl', [h, rec({ step: 0, layer: 1, experts: [[1, 2], [3, 3]] })]), /line 2: "experts"\[1\] names expert 3 twice/);
  await badTrace(write('layer.jsonl', [h, rec({ step: 0, layer: 2, experts: [[1, 2]] })]), /line 2: "layer" must be one of/);
  await badTrace(write('order.jsonl', [h, rec({ step: 2, layer: 1, experts: [] }), rec({ step: 1, layer: 1, experts: [] })]), /line 3: step 1 comes after step 2/);
  await badTrace(write('twice.jsonl', [h, rec({ step: 2, layer: 1, experts: [] }), rec({ step: 2, layer: 1, experts: [] })]), /line 3: a second record for step 2, layer 1/);
  await badTrace(write('weights.jsonl', [h, rec({ step: 0, layer: 1, experts: [[0, 1]], weights: [[1]] })]), /line 2: "weights"\[0\]/);
  await badTrace(write('topk.jsonl', [JSON.stringify({ ...HEADER, top_k: 5 })]), /line 1: bad header: "top_k"/);
  const gz = join(dir, 'cut.jsonl.gz');
  const many = Array.from({ length: 300 }, (_, s) => rec({ step: s, layer: 1, experts: [[s % 4, (s + 1) % 4]] }));
  const full = gzipSync(Buffer.from([h, ...many].join('\n') + '\n'));
  writeFileSync(gz, full.subarray(0, full.length - 30));
  await badTrace(gz, /gzip/);
  await assert.rejects(readTrace(join(dir, 'missing.jsonl')), (e: unknown) => e instanceof MoesaicError && e.code === 'E_IO');
}));

test('TraceWriter rejects a bad record and abort() leaves nothing behind', withDir(async (dir) => {
  const path = join(dir, 'w.jsonl.gz');
  const w = new TraceWriter(path, HEADER);
  w.write(RECORDS[0]);
  assert.throws(() => w.write({ step: 0, layer: 1, experts: [[0, 9]] }), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_TRACE');
  w.abort();
  assert.ok(!existsSync(path) && !existsSync(`${path}.tmp`));
  assert.throws(() => new TraceWriter(join(dir, 'h.jsonl'), { ...HEADER, moe_layers: [5] }), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_TRACE');
}));
