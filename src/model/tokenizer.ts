import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { fail } from '../errors.js';

/** The checkpoint's `tokenizer.json` (any Hugging Face tokenizer), through @huggingface/tokenizers. */
export class TextTokenizer {
  private constructor(private readonly tok: Tokenizer) {}

  /** From parsed tokenizer.json / tokenizer_config.json objects (e.g. rebuilt from GGUF metadata). */
  static fromJson(json: object, config: object = {}): TextTokenizer {
    return new TextTokenizer(new Tokenizer(json, config));
  }

  /** null when the folder has no tokenizer.json (then only --ids input works). */
  static load(dir: string): TextTokenizer | null {
    const path = join(dir, 'tokenizer.json');
    if (!existsSync(path)) return null;
    const configPath = join(dir, 'tokenizer_config.json');
    try {
      const json = JSON.parse(readFileSync(path, 'utf8')) as object;
      const config = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as object) : {};
      return new TextTokenizer(new Tokenizer(json, config));
    } catch (e) {
      fail('E_BAD_CHECKPOINT', `${path}: cannot load tokenizer (${(e as Error).message})`);
    }
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.tok.decode([...ids], { skip_special_tokens: true });
  }
}
