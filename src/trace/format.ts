import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip, gzipSync } from 'node:zlib';
import type { Readable } from 'node:stream';
import { fail, MoesaicError, showValue } from '../errors.js';
import { OutputFile } from '../io/atomic-writer.js';

/**
 * The routing-trace format: JSON Lines, one header line, then one record per forward
 * step and MoE layer. Expert buffering and placement (techniques.md §2, §3; Huang et al., arXiv
 * 2303.06182) are decided from this history, so the reader validates everything a simulator relies on
 * (ids in range, exactly k distinct experts per token, steps in order) and names the file and line at
 * fault, rather than letting a bad trace produce plausible but wrong miss rates.
 */
export interface TraceHeader {
  moesaic_trace: 1;
  model: string;
  num_layers: number;
  moe_layers: number[];
  num_experts: number;
  top_k: number;
}

export interface TraceRecord {
  step: number;
  layer: number;
  experts: number[][];
  weights?: number[][];
}

const GZIP_MAGIC0 = 0x1f;
const GZIP_MAGIC1 = 0x8b;

function isInt(v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** Checks a parsed header; `where` names the file (and line) in the error. */
export function validateHeader(h: unknown, where: string): TraceHeader {
  const bad = (msg: string): never => fail('E_BAD_TRACE', `${where}: bad header: ${msg}`);
  if (typeof h !== 'object' || h === null || Array.isArray(h)) bad('not a JSON object');
  const o = h as Record<string, unknown>;
  if (o.moesaic_trace === undefined) bad('missing header: expected a first line with "moesaic_trace": 1');
  if (!isInt(o.moesaic_trace, 0)) bad(`"moesaic_trace" must be the integer format version, got ${showValue(o.moesaic_trace)}`);
  if (o.moesaic_trace !== 1) bad(`trace format version ${o.moesaic_trace} is not supported (this moesaic reads version 1)`);
  if (typeof o.model !== 'string') bad('"model" must be a string');
  if (!isInt(o.num_layers, 1)) bad(`"num_layers" must be a positive integer, got ${showValue(o.num_layers)}`);
  const L = o.num_layers as number;
  if (!Array.isArray(o.moe_layers) || o.moe_layers.length === 0) bad('"moe_layers" must be a non-empty array');
  const moe = o.moe_layers as unknown[];
  for (let i = 0; i < moe.length; i++) {
    if (!isInt(moe[i], 0, L - 1)) bad(`"moe_layers"[${i}] must be an integer in [0, ${L - 1}], got ${showValue(moe[i])}`);
    if (i > 0 && (moe[i] as number) <= (moe[i - 1] as number)) bad('"moe_layers" must be strictly ascending');
  }
  if (!isInt(o.num_experts, 1, 1 << 20)) bad(`"num_experts" must be an integer in [1, ${1 << 20}], got ${showValue(o.num_experts)}`);
  const E = o.num_experts as number;
  if (!isInt(o.top_k, 1, E)) bad(`"top_k" must be an integer in [1, ${E}], got ${showValue(o.top_k)}`);
  return {
    moesaic_trace: 1,
    model: o.model as string,
    num_layers: L,
    moe_layers: moe as number[],
    num_experts: E,
    top_k: o.top_k as number,
  };
}

/**
 * Checks one record against the header. `seen` scratch (length num_experts) detects a token naming the
 * same expert twice without allocating per token; top-k routing picks k distinct experts.
 */
export function validateRecord(r: unknown, h: TraceHeader, where: string, seen?: Int32Array): TraceRecord {
  const bad = (msg: string): never => fail('E_BAD_TRACE', `${where}: ${msg}`);
  if (typeof r !== 'object' || r === null || Array.isArray(r)) bad('record is not a JSON object');
  const o = r as Record<string, unknown>;
  if (!isInt(o.step, 0)) bad(`"step" must be a non-negative integer, got ${showValue(o.step)}`);
  if (!isInt(o.layer, 0) || !h.moe_layers.includes(o.layer)) {
    bad(`"layer" must be one of the header's moe_layers [${h.moe_layers.join(', ')}], got ${showValue(o.layer)}`);
  }
  if (!Array.isArray(o.experts)) bad('"experts" must be an array of per-token arrays');
  const experts = o.experts as unknown[];
  const E = h.num_experts;
  const k = h.top_k;
  // mark[e] = index of the last token of this record naming e: a repeat within a token is a duplicate
  const mark = seen ?? new Int32Array(E).fill(-1);
  try {
    for (let t = 0; t < experts.length; t++) {
      const tok = experts[t];
      if (!Array.isArray(tok) || tok.length !== k) {
        bad(`"experts"[${t}] must be an array of top_k = ${k} expert ids, got ${showValue(tok)}`);
      }
      const ids = tok as unknown[];
      for (let j = 0; j < k; j++) {
        const e = ids[j] as number;
        if (!isInt(e, 0, E - 1)) bad(`"experts"[${t}][${j}] = ${JSON.stringify(e)} is not an expert id in [0, ${E - 1}]`);
        if (mark[e] === t) bad(`"experts"[${t}] names expert ${e} twice`);
        mark[e] = t;
      }
    }
  } finally {
    mark.fill(-1);
  }
  if (o.weights !== undefined) {
    if (!Array.isArray(o.weights) || o.weights.length !== experts.length) {
      bad(`"weights" must be an array with one entry per token (${experts.length})`);
    }
    const ws = o.weights as unknown[];
    for (let t = 0; t < ws.length; t++) {
      const w = ws[t];
      if (!Array.isArray(w) || w.length !== k || w.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
        bad(`"weights"[${t}] must be an array of ${k} finite numbers`);
      }
    }
  }
  return o as unknown as TraceRecord;
}

function openInput(path: string): Readable {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    fail('E_IO', `cannot open trace ${path}: ${(err as Error).message}`);
  }
  const magic = Buffer.alloc(2);
  const n = readSync(fd, magic, 0, 2, 0);
  closeSync(fd);
  const gz = path.endsWith('.gz') || (n === 2 && magic[0] === GZIP_MAGIC0 && magic[1] === GZIP_MAGIC1);
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  if (!gz) return raw;
  const gunzip = createGunzip({ chunkSize: 1 << 20 });
  raw.on('error', (e) => gunzip.destroy(e));
  return raw.pipe(gunzip);
}

function streamError(path: string, err: unknown): never {
  if (err instanceof MoesaicError) throw err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code?.startsWith?.('Z_') || /incorrect header|unexpected end|invalid/i.test(e?.message ?? '')) {
    fail('E_BAD_TRACE', `${path}: gzip data is corrupt or truncated (${e.message})`);
  }
  fail('E_IO', `${path}: read failed: ${e?.message ?? String(err)}`);
}

/**
 * Streams a .jsonl or .jsonl.gz trace (gzip detected by magic bytes or the .gz suffix); never loads the
 * whole file. Validates the header and each record (expert ids in range, k per token), errors name the
 * file and line. Records must come in non-decreasing step order with at most one record per (step,
 * layer): the simulators replay steps in file order. Blank lines are skipped.
 */
export async function readTrace(path: string): Promise<{ header: TraceHeader; records: AsyncGenerator<TraceRecord> }> {
  const input = openInput(path);
  const rl = createInterface({ input, crlfDelay: Infinity });
  const lines = rl[Symbol.asyncIterator]();
  let lineNo = 0;
  const nextLine = async (): Promise<string | undefined> => {
    for (;;) {
      let r: IteratorResult<string>;
      try {
        r = await lines.next();
      } catch (err) {
        streamError(path, err);
      }
      if (r.done) return undefined;
      lineNo++;
      if (r.value.trim() !== '') return r.value;
    }
  };
  const close = (): void => {
    rl.close();
    input.destroy();
  };
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (err) {
      close();
      fail('E_BAD_TRACE', `${path} line ${lineNo}: not valid JSON (${(err as Error).message})`);
    }
  };
  let header: TraceHeader;
  try {
    const first = await nextLine();
    if (first === undefined) fail('E_BAD_TRACE', `${path}: missing header (the file is empty)`);
    header = validateHeader(parse(first), `${path} line ${lineNo}`);
  } catch (err) {
    close();
    throw err;
  }
  const h = header;
  async function* records(): AsyncGenerator<TraceRecord> {
    const seen = new Int32Array(h.num_experts).fill(-1);
    const layerSeenAt = new Map<number, number>(); // layer -> last step it had a record
    let lastStep = -1;
    try {
      for (;;) {
        const text = await nextLine();
        if (text === undefined) return;
        const where = `${path} line ${lineNo}`;
        const rec = validateRecord(parse(text), h, where, seen);
        if (rec.step < lastStep) fail('E_BAD_TRACE', `${where}: step ${rec.step} comes after step ${lastStep}; steps must not decrease`);
        if (layerSeenAt.get(rec.layer) === rec.step) fail('E_BAD_TRACE', `${where}: a second record for step ${rec.step}, layer ${rec.layer}`);
        layerSeenAt.set(rec.layer, rec.step);
        lastStep = rec.step;
        yield rec;
      }
    } finally {
      close();
    }
  }
  return { header, records: records() };
}

/** Bytes of JSON text gathered before a write to disk (and, for .gz, one gzip member). */
const FLUSH_BYTES = 4 << 20;

/**
 * Writes a trace (gzip when path ends in .gz) through an OutputFile (src/io), so the file appears only
 * complete and an interrupted or failed run leaves nothing half-written. write() is synchronous so a model's forward pass can record without awaiting;
 * memory stays bounded because text is flushed every few MiB. A .gz file is a sequence of gzip members
 * (RFC 1952 §2.2 allows concatenation; gunzip and readTrace read them as one stream).
 */
export class TraceWriter {
  private readonly path: string;
  private readonly header: TraceHeader;
  private readonly gzip: boolean;
  private file: OutputFile | undefined;
  private chunks: string[] = [];
  private pending = 0;
  private readonly seen: Int32Array;
  private lastStep = -1;
  private readonly layerSeenAt = new Map<number, number>();
  private count = 0;

  constructor(path: string, header: TraceHeader) {
    this.path = path;
    this.header = validateHeader(header, `trace header for ${path}`);
    this.gzip = path.endsWith('.gz');
    this.seen = new Int32Array(this.header.num_experts).fill(-1);
    this.file = new OutputFile(path);
    this.push(JSON.stringify(this.header));
  }

  /** Validates the record against the header (so a recorder bug fails here, not in a later analysis). */
  write(record: TraceRecord): void {
    if (this.file === undefined) fail('E_IO', `${this.path}: write after close`);
    this.count++;
    const where = `${this.path} record ${this.count}`;
    validateRecord(record, this.header, where, this.seen);
    if (record.step < this.lastStep) fail('E_BAD_TRACE', `${where}: step ${record.step} after step ${this.lastStep}`);
    if (this.layerSeenAt.get(record.layer) === record.step) {
      fail('E_BAD_TRACE', `${where}: a second record for step ${record.step}, layer ${record.layer}`);
    }
    this.layerSeenAt.set(record.layer, record.step);
    this.lastStep = record.step;
    const out: TraceRecord = { step: record.step, layer: record.layer, experts: record.experts };
    if (record.weights !== undefined) out.weights = record.weights;
    this.push(JSON.stringify(out));
  }

  private push(line: string): void {
    this.chunks.push(line, '\n');
    this.pending += line.length + 1;
    if (this.pending >= FLUSH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.pending === 0 || this.file === undefined) return;
    const text = Buffer.from(this.chunks.join(''), 'utf8');
    this.chunks = [];
    this.pending = 0;
    const data = this.gzip ? gzipSync(text, { level: 6 }) : text;
    try {
      this.file.write(data);
    } catch (err) {
      this.file = undefined; // the OutputFile abandoned itself
      throw err;
    }
  }

  /** Flushes, then puts the file in place. */
  async close(): Promise<void> {
    if (this.file === undefined) return;
    this.flush();
    const file = this.file;
    this.file = undefined;
    file.commit();
  }

  /** Drops the partial file (e.g. when recording fails); the destination is left untouched. */
  abort(): void {
    this.file?.abort();
    this.file = undefined;
  }
}
