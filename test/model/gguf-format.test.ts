// GGUF container: writer -> reader round trip of every metadata type, alignment, zero-copy
// views, Q8_0 (de)quantisation against its definition, the q/k head permutation, and clear errors for
// bad magic, old versions and truncation. No model and no native addon needed.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MoesaicError } from '../../src/errors.js';
import type { Metadata } from '../../src/model/gguf/format.js';
import { GgmlType, ValueType } from '../../src/model/gguf/format.js';
import { permuteHeads } from '../../src/model/gguf/names.js';
import { dequantize } from '../../src/tensor/quant/dequantize.js';
import { quantize } from '../../src/tensor/quant/quantize.js';
import { parseGguf } from '../../src/model/gguf/reader.js';
import type { GgufTensorOut } from '../../src/model/gguf/writer.js';
import { writeGguf } from '../../src/model/gguf/writer.js';
import { bf16ToF32, f16ToF32 } from '../../src/tensor/dtype.js';

const root = mkdtempSync(join(tmpdir(), 'moesaic-gguf-format-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The whole file as an ArrayBuffer of its own (what mapFile returns). */
function load(path: string): ArrayBuffer {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function f32Tensor(name: string, ne: number[], data: Float32Array): GgufTensorOut {
  return { name, type: GgmlType.F32, ne, produce: (emit) => emit(new Uint8Array(data.buffer)) };
}

function expectCheckpointError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MoesaicError, `expected a MoesaicError, got ${String(e)}`);
    assert.equal(e.code, 'E_BAD_CHECKPOINT');
    for (const p of parts) assert.ok(e.message.includes(p), `message '${e.message}' should mention '${p}'`);
    return true;
  });
}

describe('writer -> reader', () => {
  const meta: Metadata = new Map([
    ['u8', { type: ValueType.U8, value: 250 }],
    ['i8', { type: ValueType.I8, value: -7 }],
    ['u16', { type: ValueType.U16, value: 65000 }],
    ['i16', { type: ValueType.I16, value: -30000 }],
    ['u32', { type: ValueType.U32, value: 4_000_000_000 }],
    ['i32', { type: ValueType.I32, value: -2_000_000_000 }],
    ['f32', { type: ValueType.F32, value: Math.fround(0.1) }],
    ['f64', { type: ValueType.F64, value: 0.1 }],
    ['bool', { type: ValueType.BOOL, value: true }],
    ['string', { type: ValueType.STRING, value: 'héllo ✓' }],
    ['u64', { type: ValueType.U64, value: 2 ** 40 }],
    ['u64big', { type: ValueType.U64, value: 2n ** 63n + 5n }],
    ['i64', { type: ValueType.I64, value: -(2 ** 40) }],
    ['general.alignment', { type: ValueType.U32, value: 64 }],
    ['arr.str', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: ['a', '', 'Ġthe', '<|x|>'] }],
    ['arr.i32', { type: ValueType.ARRAY, itemType: ValueType.I32, value: [1, -2, 3] }],
    ['arr.f32', { type: ValueType.ARRAY, itemType: ValueType.F32, value: [0.5, -1.25] }],
    ['arr.empty', { type: ValueType.ARRAY, itemType: ValueType.U8, value: [] }],
  ]);
  const a = Float32Array.from({ length: 12 }, (_, i) => i - 5.5);
  const b = Float32Array.from({ length: 3 }, (_, i) => i * 2); // 12 bytes: the next tensor needs padding
  const c = new Uint16Array([0x3f80, 0xc000, 0x4049, 0x0000]);
  const path = join(root, 'roundtrip.gguf');
  writeGguf(
    path,
    meta,
    [
      f32Tensor('a', [4, 3], a),
      f32Tensor('b', [3], b),
      { name: 'c', type: GgmlType.BF16, ne: [4], produce: (emit) => emit(new Uint8Array(c.buffer)) },
    ],
    64,
  );
  const buf = load(path);
  const file = parseGguf(buf, path);

  test('every metadata value type comes back', () => {
    assert.equal(file.version, 3);
    assert.equal(file.metadata.size, meta.size);
    for (const [k, v] of meta) assert.deepEqual(file.metadata.get(k), v, k);
  });

  test('tensor infos, alignment and offsets', () => {
    assert.equal(file.alignment, 64);
    assert.equal(file.dataOffset % 64, 0);
    assert.deepEqual([...file.tensors.keys()], ['a', 'b', 'c']);
    for (const t of file.tensors.values()) assert.equal((t.offset - file.dataOffset) % 64, 0, t.name);
    assert.deepEqual(file.tensors.get('a')!.ne, [4, 3]);
    assert.equal(file.tensors.get('c')!.type, GgmlType.BF16);
    const ta = file.tensors.get('a')!;
    assert.deepEqual(new Float32Array(buf, ta.offset, 12), a);
    const tc = file.tensors.get('c')!;
    assert.deepEqual(new Uint16Array(buf, tc.offset, 4), c);
  });

  test('no .tmp file is left behind', () => {
    assert.throws(() => readFileSync(`${path}.tmp`));
  });

  test('a producer that emits the wrong byte count fails and leaves no file', () => {
    const bad = join(root, 'bad.gguf');
    assert.throws(() => writeGguf(bad, new Map(), [f32Tensor('x', [8], new Float32Array(4))]), /produced 16 bytes, expected 32/);
    assert.throws(() => readFileSync(bad));
    assert.throws(() => readFileSync(`${bad}.tmp`));
  });
});

describe('clear errors for broken files', () => {
  const path = join(root, 'base.gguf');
  writeGguf(
    path,
    new Map([['general.name', { type: ValueType.STRING, value: 'x'.repeat(100) }]]),
    [f32Tensor('blk.0.attn_q.weight', [32, 4], new Float32Array(128))],
  );
  const whole = readFileSync(path);

  test('bad magic names the file', () => {
    const p = join(root, 'magic.gguf');
    const b = Buffer.from(whole);
    b.write('GGUX', 0, 'latin1');
    writeFileSync(p, b);
    expectCheckpointError(() => parseGguf(load(p), p), p, 'not a GGUF file');
  });

  test('version 1 is refused by name', () => {
    const p = join(root, 'v1.gguf');
    const b = Buffer.from(whole);
    b.writeUInt32LE(1, 4);
    writeFileSync(p, b);
    expectCheckpointError(() => parseGguf(load(p), p), p, 'version 1');
  });

  test('truncation anywhere is reported with the file name', () => {
    // inside the counts, the metadata string, the tensor info, and the tensor data
    for (const cut of [10, 40, 150, whole.length - 1]) {
      const p = join(root, `cut-${cut}.gguf`);
      writeFileSync(p, whole.subarray(0, cut));
      expectCheckpointError(() => parseGguf(load(p), p), p, 'truncated');
    }
  });

  test('a data offset off the alignment is refused', () => {
    const p = join(root, 'misaligned.gguf');
    const b = Buffer.from(whole);
    const name = b.indexOf('blk.0.attn_q.weight');
    const off = name + 'blk.0.attn_q.weight'.length + 4 + 2 * 8 + 4; // n_dims, ne[2], type -> offset
    b.writeBigUInt64LE(8n, off);
    writeFileSync(p, b);
    expectCheckpointError(() => parseGguf(load(p), p), 'blk.0.attn_q.weight', 'alignment');
  });
});

describe('Q8_0', () => {
  // a spread of magnitudes per block, a zero block, and exact halves to pin the rounding rule
  const x = new Float32Array(128);
  for (let i = 0; i < 32; i++) x[i] = Math.sin(i * 1.7) * (i % 5 === 0 ? 3 : 0.2);
  for (let i = 64; i < 96; i++) x[i] = (i - 80) * 1e-3;
  for (let i = 96; i < 128; i++) x[i] = i === 96 ? 127 : (i - 96) + 0.5; // d = 1: q = x rounded half away from 0
  x[100] = -4.5;
  const q = new Uint8Array((128 / 32) * 34);
  quantize('q8_0', x, 0, 128, q);
  const back = new Float32Array(128);
  dequantize('q8_0', q, 0, 128, back);

  test('layout: f16 scale = max|x|/127, then 32 int8', () => {
    const dv = new DataView(q.buffer);
    assert.equal(f16ToF32(dv.getUint16(3 * 34, true)), 1);
    assert.equal(dv.getInt8(3 * 34 + 2 + 1), 2); // 1.5 -> 2
    assert.equal(dv.getInt8(3 * 34 + 2 + 4), -5); // -4.5 -> -5 (half away from zero, as ggml)
    assert.ok(Math.abs(f16ToF32(dv.getUint16(2 * 34, true)) - 16e-3 / 127) < 1e-7, 'block 2 scale');
    assert.equal(dv.getUint16(34, true), 0, 'an all-zero block has scale 0');
  });

  test('every value within half a step of the block scale', () => {
    for (let b = 0; b < 4; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]!));
      const d = amax / 127;
      for (let i = 0; i < 32; i++) {
        const k = b * 32 + i;
        // half a step, plus the f16 rounding of the scale (relative 2^-11) times |q| <= 127
        assert.ok(Math.abs(back[k]! - x[k]!) <= d / 2 + 127 * d * 2 ** -11 + 1e-12, `element ${k}: ${back[k]} vs ${x[k]}`);
      }
    }
  });
});

describe('q/k head permutation', () => {
  test("matches llama.cpp's reshape(heads, 2, D/2, cols).swapaxes(1, 2) and inverts", () => {
    const heads = 3;
    const D = 8;
    const cols = 2;
    const src = Float32Array.from({ length: heads * D * cols }, (_, i) => i);
    const p = permuteHeads(src, cols, heads, 'toGguf');
    for (let h = 0; h < heads; h++) {
      for (let s = 0; s < 2; s++) {
        for (let i = 0; i < D / 2; i++) {
          for (let c = 0; c < cols; c++) {
            // source index (h, s, i, c) lands at (h, i, s, c)
            assert.equal(p[((h * D + 2 * i + s) * cols) + c], src[((h * D + s * (D / 2) + i) * cols) + c]);
          }
        }
      }
    }
    assert.deepEqual(permuteHeads(p, cols, heads, 'toHf'), src);
    const bits = Uint16Array.from({ length: 16 }, (_, i) => i);
    assert.deepEqual(permuteHeads(permuteHeads(bits, 1, 2, 'toGguf'), 1, 2, 'toHf'), bits);
  });
});
