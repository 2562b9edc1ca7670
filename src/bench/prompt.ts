import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../util/rng.js';
import type { ModelConfig } from '../model/config.js';
import { metaArray, TokenType } from '../model/gguf/format.js';
import { parseGguf } from '../model/gguf/reader.js';
import { fail } from '../errors.js';

/**
 * The benchmark prompt: P token ids drawn with a fixed seed, uniformly over the vocabulary minus the
 * special tokens (BOS, EOS, control / added-special ones). Ids, not text, so both engines evaluate
 * exactly the same sequence whatever their tokenizers would do with it, and no BOS is added.
 */
export function promptIds(vocabSize: number, excluded: ReadonlySet<number>, count: number, seed = 0): number[] {
  const allowed: number[] = [];
  for (let id = 0; id < vocabSize; id++) if (!excluded.has(id)) allowed.push(id);
  if (allowed.length === 0) fail('E_BAD_INPUT', 'the vocabulary has no ordinary tokens to build a prompt from');
  const rng = new Rng(seed, 'bench-prompt');
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(allowed[rng.nextU32() % allowed.length]!);
  return ids;
}

/**
 * Special token ids of a checkpoint: the config's BOS/EOS, plus tokenizer.json's special added tokens
 * (Hugging Face folder) or the GGUF vocabulary's non-ordinary token types (control, unknown, unused).
 * `mapFile` maps a GGUF without reading it into the heap.
 */
export function specialTokenIds(model: string, cfg: ModelConfig, mapFile: (path: string) => ArrayBuffer): Set<number> {
  const out = new Set<number>(cfg.eosTokenIds);
  if (cfg.bosTokenId !== null) out.add(cfg.bosTokenId);
  if (statSync(model).isDirectory()) {
    const path = join(model, 'tokenizer.json');
    if (existsSync(path)) {
      const json = JSON.parse(readFileSync(path, 'utf8')) as { added_tokens?: { id: number; special?: boolean }[] };
      for (const t of json.added_tokens ?? []) if (t.special) out.add(t.id);
    }
    return out;
  }
  const file = parseGguf(mapFile(model), model);
  const types = metaArray(file.metadata, 'tokenizer.ggml.token_type');
  types?.forEach((t, id) => {
    const type = Number(t);
    if (type === TokenType.CONTROL || type === TokenType.UNKNOWN || type === TokenType.UNUSED) out.add(id);
  });
  return out;
}
