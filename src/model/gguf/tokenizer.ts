import { fail } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import { TextTokenizer } from '../tokenizer.js';
import type { Metadata } from './format.js';
import { metaArray, metaString, TokenType, ValueType } from './format.js';
import type { GgufFile } from './reader.js';

/**
 * The tokenizer embedded in a GGUF (`tokenizer.ggml.*`) as a Hugging Face tokenizer.json object, and
 * back. Two llama.cpp tokenizer models are rebuilt: `gpt2` (byte-level BPE: tokens + merges) and
 * `llama` (SentencePiece BPE: tokens + scores, turned into merges the way transformers converts a
 * SentencePiece model). Special tokens are the CONTROL / USER_DEFINED entries of token_type.
 */

/**
 * tokenizer.ggml.pre values whose split is GPT-2's regex, which the ByteLevel pre-tokenizer applies
 * (llama.cpp gives `olmo` the same regex).
 */
const GPT2_SPLIT_PRE = new Set(['gpt-2', 'olmo']);

/**
 * Other pre-tokenizers as the split regex their Hugging Face tokenizer.json carries (a `Split` before
 * a regex-free ByteLevel). Any other tokenizer.ggml.pre splits text in ways not reproduced here, so
 * its rebuilt tokenizer decodes but refuses to encode rather than guess.
 */
const PRE_SPLITS: Readonly<Record<string, string>> = {
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

function preTokenizer(pre: string): object | undefined {
  if (GPT2_SPLIT_PRE.has(pre)) return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const regex = PRE_SPLITS[pre];
  if (regex === undefined) return undefined;
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  };
}

/**
 * The tokenizer.ggml.pre for a tokenizer.json pre-tokenizer: `gpt-2` for ByteLevel with its regex
 * (llama.cpp maps `gpt-2` to exactly GPT-2's split; its `default` is a different set of regexes),
 * or the name whose split regex a Split + regex-free ByteLevel sequence carries.
 */
function exportPre(pre: HfPreTokenizer | null | undefined): string | undefined {
  if (pre?.type === 'ByteLevel') return pre.use_regex === false ? undefined : 'gpt-2';
  const [split, byteLevel, ...rest] = pre?.type === 'Sequence' ? (pre.pretokenizers ?? []) : [];
  if (rest.length > 0 || split?.type !== 'Split' || byteLevel?.type !== 'ByteLevel' || byteLevel.use_regex !== false) return undefined;
  return Object.keys(PRE_SPLITS).find((name) => PRE_SPLITS[name] === split.pattern?.Regex);
}

interface Added {
  id: number;
  content: string;
  single_word: false;
  lstrip: false;
  rstrip: false;
  normalized: false;
  special: boolean;
}

function addedTokens(tokens: readonly string[], types: readonly number[] | undefined): Added[] {
  const out: Added[] = [];
  types?.forEach((t, id) => {
    if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED) {
      out.push({ id, content: tokens[id]!, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t === TokenType.CONTROL });
    }
  });
  return out;
}

function vocabOf(tokens: readonly string[]): Record<string, number> {
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  return vocab;
}

export interface RebuiltTokenizer {
  readonly json: Record<string, unknown>;
  /** why text cannot be encoded, when only decoding is trustworthy */
  readonly encodeUnsupported?: string;
}

/** tokenizer.json rebuilt from the metadata, or null when the file has no vocabulary. */
export function tokenizerJsonFromGguf(file: GgufFile): RebuiltTokenizer | null {
  const meta = file.metadata;
  const model = metaString(meta, 'tokenizer.ggml.model');
  const tokens = metaArray(meta, 'tokenizer.ggml.tokens') as readonly string[] | undefined;
  if (!model || model === 'none' || model === 'no_vocab' || !tokens) return null;
  const types = metaArray(meta, 'tokenizer.ggml.token_type')?.map(Number);
  if (model === 'gpt2') {
    const merges = (metaArray(meta, 'tokenizer.ggml.merges') ?? []) as readonly string[];
    const pre = metaString(meta, 'tokenizer.ggml.pre') ?? 'default';
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const split = preTokenizer(pre);
    return {
      json: {
        version: '1.0',
        added_tokens: addedTokens(tokens, types),
        normalizer: null,
        pre_tokenizer: split ?? byteLevel,
        post_processor: null,
        decoder: byteLevel,
        model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: vocabOf(tokens), merges: [...merges] },
      },
      encodeUnsupported: split
        ? undefined
        : `${file.path}: tokenizer.ggml.pre '${pre}' is not supported for encoding text (supported: ${[...GPT2_SPLIT_PRE, ...Object.keys(PRE_SPLITS)].join(', ')}); pass token ids instead`,
    };
  }
  if (model === 'llama') return { json: sentencePieceJson(file, tokens, types) };
  return {
    json: { version: '1.0', added_tokens: [], model: { type: 'BPE', vocab: vocabOf(tokens), merges: [] }, decoder: null },
    encodeUnsupported: `${file.path}: tokenizer.ggml.model '${model}' is not supported (supported: gpt2, llama); pass token ids instead`,
  };
}

/**
 * A SentencePiece BPE vocabulary as an HF BPE model with byte fallback. SentencePiece merges the pair
 * whose joined piece scores highest; HF BPE applies merges by rank, so every split of every piece into
 * two pieces of the vocabulary becomes a merge ranked by the joined piece's score.
 */
function sentencePieceJson(file: GgufFile, tokens: readonly string[], types: number[] | undefined): Record<string, unknown> {
  const scores = metaArray(file.metadata, 'tokenizer.ggml.scores')?.map(Number) ?? tokens.map((_, i) => -i);
  const vocab = vocabOf(tokens);
  const merges: { pair: string; score: number; id: number }[] = [];
  tokens.forEach((piece, id) => {
    const t = types?.[id] ?? TokenType.NORMAL;
    if (t !== TokenType.NORMAL && t !== TokenType.USER_DEFINED) return;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join('');
      const b = chars.slice(k).join('');
      if (a in vocab && b in vocab) merges.push({ pair: `${a} ${b}`, score: scores[id]!, id });
    }
  });
  merges.sort((x, y) => y.score - x.score || x.id - y.id);
  const unkId = types?.indexOf(TokenType.UNKNOWN) ?? -1;
  const addPrefix = file.metadata.get('tokenizer.ggml.add_space_prefix')?.value !== false;
  const replace = (from: string, to: string) => ({ type: 'Replace', pattern: { String: from }, content: to });
  return {
    version: '1.0',
    added_tokens: addedTokens(tokens, types),
    normalizer: { type: 'Sequence', normalizers: [...(addPrefix ? [{ type: 'Prepend', prepend: '▁' }] : []), replace(' ', '▁')] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [replace('▁', ' '), { type: 'ByteFallback' }, { type: 'Fuse' }, ...(addPrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : [])],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkId >= 0 ? tokens[unkId] : null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => m.pair),
    },
  };
}

/** The GGUF's tokenizer for moesaic: null without a vocabulary; text encoding refused where unsupported. */
export function tokenizerFromGguf(file: GgufFile): TextTokenizer | null {
  const rebuilt = tokenizerJsonFromGguf(file);
  if (!rebuilt) return null;
  let tok: TextTokenizer;
  try {
    // llama.cpp decodes token text verbatim: no "clean-up" of spaces before punctuation
    tok = TextTokenizer.fromJson(rebuilt.json, { clean_up_tokenization_spaces: false });
  } catch (e) {
    fail('E_BAD_CHECKPOINT', `${file.path}: cannot rebuild the tokenizer from tokenizer.ggml.* (${(e as Error).message})`);
  }
  const why = rebuilt.encodeUnsupported;
  if (why) tok.encode = () => fail('E_BAD_INPUT', why);
  return tok;
}

interface HfPreTokenizer {
  type?: string;
  use_regex?: boolean;
  pattern?: { Regex?: string };
  pretokenizers?: HfPreTokenizer[];
}

interface HfTokenizerJson {
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: HfPreTokenizer | null;
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean };
}

/**
 * tokenizer.ggml.* keys for a Hugging Face tokenizer.json. Only byte-level BPE with GPT-2's split is
 * exported (what gen-model writes, and GPT-2-style checkpoints); anything else is refused by name.
 * Ids beyond the tokenizer up to vocab_size become `[PAD<id>]` entries of type UNUSED, as llama.cpp's
 * converter does, because llama.cpp requires exactly one token per embedding row.
 */
export function ggufTokenizerMetadata(tokJson: unknown, cfg: ModelConfig, source: string): Metadata {
  const t = tokJson as HfTokenizerJson;
  const pre = exportPre(t.pre_tokenizer);
  if (t.model?.type !== 'BPE' || t.model.byte_fallback || pre === undefined) {
    fail(
      'E_BAD_CHECKPOINT',
      `${source}: only byte-level BPE tokenizers (GPT-2's ByteLevel split, or the Qwen2 / Llama-3 Split + ByteLevel) can be exported to GGUF; this one has model ${t.model?.type} and pre_tokenizer ${t.pre_tokenizer?.type}`,
    );
  }
  const V = cfg.vocabSize;
  const tokens: (string | undefined)[] = new Array(V);
  const types = new Array<number>(V).fill(TokenType.NORMAL);
  for (const [piece, id] of Object.entries(t.model.vocab ?? {})) if (id < V) tokens[id] = piece;
  for (const a of t.added_tokens ?? []) {
    if (a.id >= V) continue;
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  for (let i = 0; i < V; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
    }
  }
  const merges = (t.model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const m: Metadata = new Map();
  m.set('tokenizer.ggml.model', { type: ValueType.STRING, value: 'gpt2' });
  m.set('tokenizer.ggml.pre', { type: ValueType.STRING, value: pre });
  m.set('tokenizer.ggml.tokens', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: tokens as string[] });
  m.set('tokenizer.ggml.token_type', { type: ValueType.ARRAY, itemType: ValueType.I32, value: types });
  m.set('tokenizer.ggml.merges', { type: ValueType.ARRAY, itemType: ValueType.STRING, value: merges });
  if (cfg.bosTokenId !== null) m.set('tokenizer.ggml.bos_token_id', { type: ValueType.U32, value: cfg.bosTokenId });
  if (cfg.eosTokenIds.length > 0) m.set('tokenizer.ggml.eos_token_id', { type: ValueType.U32, value: cfg.eosTokenIds[0]! });
  const pad = (cfg.raw.pad_token_id ?? null) as number | null;
  if (typeof pad === 'number') m.set('tokenizer.ggml.padding_token_id', { type: ValueType.U32, value: pad });
  // the Hugging Face tokenizer adds no BOS/EOS on encode; say so, or llama.cpp would prepend BOS
  m.set('tokenizer.ggml.add_bos_token', { type: ValueType.BOOL, value: false });
  m.set('tokenizer.ggml.add_eos_token', { type: ValueType.BOOL, value: false });
  return m;
}
