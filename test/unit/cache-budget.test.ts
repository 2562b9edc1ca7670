import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheBudget, sizeCache } from '../../src/memory/cache-budget.js';

test('--expert-cache parses sizes and shares; garbage is one clear E_BAD_OPTION', () => {
  assert.deepEqual(parseCacheBudget('512MB'), { bytes: 512e6 });
  assert.deepEqual(parseCacheBudget('1.5GiB'), { bytes: 1.5 * 2 ** 30 });
  assert.deepEqual(parseCacheBudget('4096'), { bytes: 4096 });
  assert.deepEqual(parseCacheBudget('25%'), { share: 0.25 });
  for (const bad of ['', 'lots', '-1MB', '0%', '150%', '12 parsecs', '0']) {
    assert.throws(() => parseCacheBudget(bad), (e: Error & { code?: string }) => e.code === 'E_BAD_OPTION' && e.message.includes('--expert-cache'), bad);
  }
});

test('a budget becomes whole slots per MoE layer, capped at the experts; below one slot is refused', () => {
  // 4 MoE layers x 32 experts x 1 MB
  const MB = 1e6;
  assert.equal(sizeCache({ share: 0.25 }, 4, 32, MB).slotsPerLayer, 8);
  assert.equal(sizeCache({ bytes: 4 * 8 * MB + MB }, 4, 32, MB).slotsPerLayer, 8); // rounded down
  const all = sizeCache({ share: 1 }, 4, 32, MB);
  assert.equal(all.slotsPerLayer, 32);
  assert.equal(all.cacheBytes, all.modelExpertBytes);
  assert.equal(sizeCache({ bytes: 1e12 }, 4, 32, MB).slotsPerLayer, 32);
  assert.equal(sizeCache({ slots: 3 }, 4, 32, MB).cacheBytes, 12 * MB);
  assert.throws(() => sizeCache({ bytes: 3 * MB }, 4, 32, MB), /less than one expert per MoE layer/);
  assert.throws(() => sizeCache({ slots: 0 }, 4, 32, MB), /positive integer/);
});
