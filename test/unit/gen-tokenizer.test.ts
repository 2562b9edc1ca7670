import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { generateModel } from '../../src/gen/gen-model.js';
import { byteLevelWords, byteToChar, fillerSymbols, trainBpe } from '../../src/gen/bpe.js';
import { tokenizerFiles } from '../../src/gen/tokenizer-files.js';

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog.',
  "We're routing 1024 tokens to 8 experts; isn't that fun?",
  '  Leading spaces,\ttabs and\nnew lines   stay exactly as they were.  ',
  'Unicode too: café, naïve, Øresund, 東京, emoji 🙂 and a dash — like this.',
  'mixture-of-experts (MoE) models: top-2 gating, capacity factor 1.25, 99% load.',
];

const load = (json: unknown, cfg: unknown) => new Tokenizer(json as never, cfg as never);

test('the written tokenizer loads in @huggingface/tokenizers and round-trips text', async () => {
  const root = mkdtempSync(join(tmpdir(), 'moesaic-gen-tok-'));
  try {
    const out = join(root, 'm');
    await generateModel({ arch: 'qwen3_moe', size: 'tiny', out });
    const read = (f: string) => JSON.parse(readFileSync(join(out, f), 'utf8'));
    const tj = read('tokenizer.json');
    const tc = read('tokenizer_config.json');
    const config = read('config.json');
    const tok = load(tj, tc);
    for (const s of SENTENCES) {
      const ids = tok.encode(s).ids;
      assert.ok(ids.length > 0 && ids.length < new TextEncoder().encode(s).length, `no merges used for: ${s}`);
      assert.ok(ids.every((id: number) => id >= 0 && id < config.vocab_size));
      assert.equal(tok.decode(ids), s);
    }
    // frequent corpus words are single tokens
    assert.equal(tok.encode(' the').ids.length, 1);
    // special tokens agree with config.json and are recognised in text
    assert.equal(tok.token_to_id('<|begin|>'), config.bos_token_id);
    assert.equal(tok.token_to_id('<|endoftext|>'), config.eos_token_id);
    assert.equal(tc.bos_token, '<|begin|>');
    assert.equal(tc.eos_token, '<|endoftext|>');
    assert.deepEqual(tok.encode('<|begin|>Hi<|endoftext|>').ids.at(0), config.bos_token_id);
    assert.deepEqual(tok.encode('<|begin|>Hi<|endoftext|>').ids.at(-1), config.eos_token_id);
    assert.equal(tj.pre_tokenizer.type, 'ByteLevel');
    assert.equal(tj.pre_tokenizer.add_prefix_space, false);
    assert.equal(tj.decoder.type, 'ByteLevel');
    assert.equal(tj.model.type, 'BPE');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

for (const vocabSize of [512, 2048]) {
  test(`vocab ${vocabSize}: every id below vocab_size is one distinct vocabulary entry`, () => {
    const { tokenizer, tokenizerConfig } = tokenizerFiles(vocabSize, 256);
    const model = tokenizer['model'] as { vocab: Record<string, number>; merges: string[] };
    const ids = Object.values(model.vocab).sort((a, b) => a - b);
    assert.deepEqual(ids, Array.from({ length: vocabSize }, (_, i) => i));
    const tok = load(tokenizer, tokenizerConfig);
    // every merge's parts and result are in the vocabulary
    for (const m of model.merges) {
      const [l, r] = m.split(' ') as [string, string];
      assert.ok(l in model.vocab && r in model.vocab && l + r in model.vocab, m);
    }
    // merged symbols decode to non-empty text; ids past the merges are word-like filler
    const fillerStart = 3 + 256 + model.merges.length;
    if (vocabSize === 2048) assert.ok(fillerStart < vocabSize, 'expected filler entries at vocab 2048');
    for (let id = 3 + 256; id < vocabSize; id++) {
      const text = tok.decode([id]);
      if (id >= fillerStart) assert.match(text, /^ [a-z]+$/, `id ${id} decodes to ${JSON.stringify(text)}`);
      else assert.ok(text.length >= 2, `merge id ${id} decodes to ${JSON.stringify(text)}`);
    }
    // filler ids are reachable by encoding their own text
    const lastText = tok.decode([vocabSize - 1]);
    assert.equal(tok.decode(tok.encode(lastText).ids), lastText);
  });
}

test('byte-level alphabet: 256 distinct printable symbols, identity on printable ASCII', () => {
  const t = byteToChar();
  assert.equal(new Set(t).size, 256);
  assert.equal(t[65], 'A');
  assert.equal(t[32], 'Ġ'); // space, as in GPT-2
  assert.equal(t[10], 'Ċ'); // newline
  assert.ok(t.every((c) => !/\s/u.test(c)));
  assert.deepEqual(byteLevelWords("Hi there, it's"), ['Hi', 'Ġthere', ',', 'Ġit', "'s"]);
});

test('BPE trainer merges the most frequent pair first and stops at pairs seen once', () => {
  const { merges, symbols } = trainBpe('ab ab ab cd', 100);
  // "ab" occurs 3x, then " ab" (Ġ+ab) 2x; "cd" and "Ġcd" occur once and are never merged
  assert.deepEqual(merges, ['a b', 'Ġ ab']);
  assert.deepEqual(symbols.slice(256), ['ab', 'Ġab']);
  assert.deepEqual(trainBpe('ab ab ab cd', 1).merges, ['a b']);
});

test('filler symbols are unique, skip taken entries and look like words', () => {
  const f = fillerSymbols(500, new Set(['Ġba']));
  assert.equal(f.length, 500);
  assert.equal(new Set(f).size, 500);
  assert.ok(!f.includes('Ġba'));
  assert.ok(f.every((s) => /^Ġ[a-z]+$/.test(s)));
});
