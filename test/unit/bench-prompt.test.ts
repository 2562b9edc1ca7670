// bench generate's prompt: seeded, reproducible, inside the vocabulary, never a special token.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promptIds, specialTokenIds } from '../../src/bench/prompt.js';
import { readConfig } from '../../src/model/config.js';
import { genModel, removeDir, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-bench-prompt-');
after(() => removeDir(root));

test('promptIds: same seed same ids, another seed other ids, all allowed', () => {
  const excluded = new Set([0, 1, 2]);
  const a = promptIds(50, excluded, 200, 7);
  assert.deepEqual(promptIds(50, excluded, 200, 7), a);
  assert.notDeepEqual(promptIds(50, excluded, 200, 8), a);
  assert.equal(a.length, 200);
  for (const id of a) assert.ok(Number.isInteger(id) && id >= 3 && id < 50, `id ${id}`);
});

test('specialTokenIds of a Hugging Face folder: BOS, EOS and the special added tokens', async () => {
  const dir = await genModel(join(root, 'm'), 'mixtral');
  const cfg = readConfig(dir);
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { added_tokens: { id: number; special: boolean }[] };
  const special = specialTokenIds(dir, cfg, () => {
    throw new Error('a folder is not mapped');
  });
  assert.ok(special.has(cfg.bosTokenId!));
  for (const e of cfg.eosTokenIds) assert.ok(special.has(e));
  for (const t of tok.added_tokens) if (t.special) assert.ok(special.has(t.id), `special ${t.id}`);
  const ids = promptIds(cfg.vocabSize, special, 500);
  assert.ok(ids.every((id) => !special.has(id) && id < cfg.vocabSize));
});
