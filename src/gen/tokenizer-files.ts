import { BOS_ID, EOS_ID, PAD_ID } from './configs.js';
import { fillerSymbols, trainBpe } from './bpe.js';
import { CORPUS } from './corpus.js';

/**
 * tokenizer.json, tokenizer_config.json and generation_config.json of a synthetic checkpoint. The
 * tokenizer depends only on vocab_size (never on the seed), so models of one size share it.
 *
 * Id layout: 0 <|pad|>, 1 <|begin|> (bos), 2 <|endoftext|> (eos), then the 256 byte symbols, then one
 * id per learned merge, then word-like filler symbols up to vocab_size, so every id < vocab_size is a
 * real vocabulary entry that decodes to visible text.
 */
export const SPECIAL_TOKENS: readonly { id: number; content: string }[] = [
  { id: PAD_ID, content: '<|pad|>' },
  { id: BOS_ID, content: '<|begin|>' },
  { id: EOS_ID, content: '<|endoftext|>' },
];

export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
}

export function tokenizerFiles(vocabSize: number, maxPos: number): TokenizerFiles {
  const specials = SPECIAL_TOKENS.length;
  const { symbols, merges } = trainBpe(CORPUS, vocabSize - specials - 256);
  const taken = new Set(symbols);
  const all = [...symbols, ...fillerSymbols(vocabSize - specials - symbols.length, taken)];
  const vocab: Record<string, number> = {};
  for (const s of SPECIAL_TOKENS) vocab[s.content] = s.id;
  all.forEach((sym, i) => (vocab[sym] = specials + i));
  const addedTokens = SPECIAL_TOKENS.map((s) => ({
    id: s.id,
    content: s.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    // no BOS/EOS is added on encode: encode(text) then decode gives the text back
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(
      addedTokens.map(({ id, ...rest }) => [String(id), rest]),
    ),
    bos_token: '<|begin|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|pad|>',
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: maxPos,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const generationConfig = {
    _from_model_config: true,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    pad_token_id: PAD_ID,
    transformers_version: '4.51.0',
  };
  return { tokenizer, tokenizerConfig, generationConfig };
}
