import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { fail } from '../errors.js';
import { readRegularJson } from './checkpoint-files.js';

/** The checkpoint's `tokenizer.json` (any Hugging Face tokenizer), through @huggingface/tokenizers. */
export class TextTokenizer {
  private constructor(private readonly tok: Tokenizer) {}

  /** From parsed tokenizer.json / tokenizer_config.json objects (e.g. rebuilt from GGUF metadata). */
  static fromJson(json: object, config: object = {}): TextTokenizer {
    return new TextTokenizer(new Tokenizer(json, config));
  }

  /**
   * null when the folder has no tokenizer.json (then only --ids input works). Each file is read and
   * checked on its own, so an error names the file that is broken.
   */
  static load(dir: string): TextTokenizer | null {
    const path = join(dir, 'tokenizer.json');
    if (!existsSync(path)) return null;
    const json = jsonObject(readRegularJson(path, 'E_BAD_CHECKPOINT'), path);
    checkVocab(json, path);
    const configPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(configPath) ? jsonObject(readRegularJson(configPath, 'E_BAD_CHECKPOINT'), configPath) : {};
    try {
      return new TextTokenizer(new Tokenizer(json, config));
    } catch (e) {
      fail('E_BAD_CHECKPOINT', `${path} (with ${existsSync(configPath) ? 'tokenizer_config.json' : 'no tokenizer_config.json'}): cannot build the tokenizer (${(e as Error).message})`);
    }
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.tok.decode([...ids], { skip_special_tokens: true });
  }
}

function jsonObject(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('E_BAD_CHECKPOINT', `${path} is not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * `model.vocab` is an object of token -> id (BPE, WordPiece, WordLevel) or a list of [token, score]
 * pairs (Unigram). The tokenizer library accepts anything there and then encodes every text to no
 * tokens, so a malformed vocabulary is refused here, where the file can be named.
 */
function checkVocab(json: Record<string, unknown>, path: string): void {
  const model = json.model as Record<string, unknown> | undefined;
  if (typeof model !== 'object' || model === null || Array.isArray(model)) fail('E_BAD_CHECKPOINT', `${path}: 'model' must be an object`);
  const vocab = model.vocab;
  const isList = Array.isArray(vocab);
  if (typeof vocab !== 'object' || vocab === null) {
    fail('E_BAD_CHECKPOINT', `${path}: model.vocab must be an object of token -> id (or a list of [token, score] for Unigram), got ${vocab === null ? 'null' : typeof vocab}`);
  }
  const size = isList ? vocab.length : Object.keys(vocab).length;
  if (size === 0) fail('E_BAD_CHECKPOINT', `${path}: model.vocab is empty`);
  const badEntry = isList
    ? (vocab as unknown[]).findIndex((p) => !Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'number')
    : Object.values(vocab).findIndex((id) => !Number.isInteger(id) || (id as number) < 0);
  if (badEntry >= 0) {
    const what = isList ? `entry ${badEntry} is not a [token, score] pair` : `token '${Object.keys(vocab)[badEntry]}' has id ${JSON.stringify(Object.values(vocab)[badEntry])}, not an integer >= 0`;
    fail('E_BAD_CHECKPOINT', `${path}: model.vocab ${what}`);
  }
}
