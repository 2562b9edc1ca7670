// GGUF tokenizer reconstruction beyond the byte-level BPE that gguf.test.ts round-trips:
// a SentencePiece ("llama") vocabulary with byte fallback, unknown pre-tokenizers, no vocabulary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MoesaicError } from '../../src/errors.js';
import type { Metadata, MetaValue } from '../../src/model/gguf/format.js';
import { TokenType, ValueType } from '../../src/model/gguf/format.js';
import type { GgufFile } from '../../src/model/gguf/reader.js';
import { ggufTokenizerMetadata, tokenizerFromGguf, tokenizerJsonFromGguf } from '../../src/model/gguf/tokenizer.js';
import type { ModelConfig } from '../../src/model/config.js';

const str = (value: string): MetaValue => ({ type: ValueType.STRING, value });

function fileWith(entries: [string, MetaValue][]): GgufFile {
  const metadata: Metadata = new Map(entries);
  return { path: 'test.gguf', version: 3, metadata, tensors: new Map(), alignment: 32, dataOffset: 0 };
}

/** A SentencePiece vocabulary as llama.cpp stores it: specials, 256 byte tokens, then scored pieces. */
function sentencePiece(): GgufFile {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  // higher score = merged earlier; "▁hello" and "▁world" are whole pieces
  const pieces = ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 'll', 'he', '▁h', 'llo', 'hello', '▁hello', 'or', 'wor', 'ld', 'world', '▁w', '▁world'];
  pieces.forEach((p, i) => {
    tokens.push(p);
    types.push(TokenType.NORMAL);
    scores.push(p.length === 1 ? -1000 - i : -i);
  });
  return fileWith([
    ['tokenizer.ggml.model', str('llama')],
    ['tokenizer.ggml.tokens', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: tokens }],
    ['tokenizer.ggml.scores', { type: ValueType.ARRAY, itemType: ValueType.F32, value: scores }],
    ['tokenizer.ggml.token_type', { type: ValueType.ARRAY, itemType: ValueType.I32, value: types }],
  ]);
}

test('SentencePiece: whole pieces, the ▁ word prefix, byte fallback and specials', () => {
  const tok = tokenizerFromGguf(sentencePiece())!;
  const id = (piece: string) => (sentencePiece().metadata.get('tokenizer.ggml.tokens')!.value as string[]).indexOf(piece);
  assert.deepEqual(tok.encode('hello world'), [id('▁hello'), id('▁world')]);
  assert.equal(tok.decode([id('▁hello'), id('▁world')]), 'hello world');
  // 'é' is not in the vocabulary: its UTF-8 bytes 0xC3 0xA9 are byte tokens, and decode reassembles them
  const ids = tok.encode('hello é');
  assert.deepEqual(ids, [id('▁hello'), id('▁'), id('<0xC3>'), id('<0xA9>')]);
  assert.equal(tok.decode(ids), 'hello é');
  assert.equal(tok.decode([1, id('▁hello'), 2]), 'hello', 'control tokens are skipped when decoding');
});

/** A byte-level vocabulary where the digits 1 and 2 merge, to tell the split regexes apart. */
function digits(pre: string): GgufFile {
  return fileWith([
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str(pre)],
    ['tokenizer.ggml.tokens', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: ['1', '2', '12', 'Ġ', 'a', 'Ġa'] }],
    ['tokenizer.ggml.merges', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: ['1 2', 'Ġ a'] }],
  ]);
}

test('gpt2 vocabularies split text by their tokenizer.ggml.pre', () => {
  // GPT-2 and Llama-3 keep a run of (up to 3) digits together; Qwen2 splits every digit
  assert.deepEqual(tokenizerFromGguf(digits('gpt-2'))!.encode('12 a'), [2, 5]);
  assert.deepEqual(tokenizerFromGguf(digits('llama-bpe'))!.encode('12 a'), [2, 5]);
  assert.deepEqual(tokenizerFromGguf(digits('qwen2'))!.encode('12 a'), [0, 1, 5]);
  assert.equal(tokenizerFromGguf(digits('qwen2'))!.decode([0, 1, 5]), '12 a');
});

test('export writes the pre-tokenizer name of a Split + ByteLevel tokenizer.json', () => {
  const rebuilt = tokenizerJsonFromGguf(digits('qwen2'))!.json;
  const cfg = { vocabSize: 6, bosTokenId: null, eosTokenIds: [], raw: {} } as unknown as ModelConfig;
  assert.equal(ggufTokenizerMetadata(rebuilt, cfg, 'x').get('tokenizer.ggml.pre')!.value, 'qwen2');
  assert.equal(ggufTokenizerMetadata(tokenizerJsonFromGguf(digits('olmo'))!.json, cfg, 'x').get('tokenizer.ggml.pre')!.value, 'gpt-2');
  const sp = tokenizerJsonFromGguf(sentencePiece())!.json;
  assert.throws(() => ggufTokenizerMetadata(sp, { ...cfg, vocabSize: 300 }, 'tok.json'), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_CHECKPOINT' && e.message.startsWith('tok.json'));
});

test('gpt2 vocabulary with an unknown pre-tokenizer decodes but refuses to encode', () => {
  const file = fileWith([
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('deepseek-llm')],
    ['tokenizer.ggml.tokens', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: ['a', 'b', 'ab', 'Ġc'] }],
    ['tokenizer.ggml.merges', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: ['a b'] }],
  ]);
  const tok = tokenizerFromGguf(file)!;
  assert.equal(tok.decode([2, 3]), 'ab c');
  assert.throws(() => tok.encode('ab'), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_INPUT' && /deepseek-llm/.test(e.message));
});

test('no vocabulary: no tokenizer', () => {
  assert.equal(tokenizerFromGguf(fileWith([['tokenizer.ggml.model', str('no_vocab')]])), null);
  assert.equal(tokenizerFromGguf(fileWith([])), null);
});
