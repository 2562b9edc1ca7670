// Error messages show the value that is wrong as the user wrote it (or say why they cannot), and name
// the limit that was broken.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MoesaicError, showValue } from '../../src/errors.js';
import { configJson, modelDims } from '../../src/gen/configs.js';
import { parseConfig } from '../../src/model/config.js';
import { validateHeader } from '../../src/trace/format.js';
import { cli } from '../reference/harness.js';

const configError = (patch: Record<string, unknown>): string => {
  const raw = { ...configJson(modelDims('mixtral', 'tiny'), 'f32'), ...patch };
  try {
    parseConfig(raw, 'config.json');
  } catch (e) {
    assert.ok(e instanceof MoesaicError && e.code === 'E_BAD_CONFIG', String(e));
    return e.message;
  }
  assert.fail(`config ${JSON.stringify(patch)} was accepted`);
};

test('NaN and Infinity are shown by name, not as null', () => {
  assert.equal(showValue(Number.NaN), 'NaN');
  assert.equal(showValue(-Infinity), '-Infinity');
  assert.match(configError({ rms_norm_eps: Number.NaN }), /rms_norm_eps' must be a positive number, got NaN$/);
  assert.match(configError({ rms_norm_eps: Infinity }), /got Infinity$/);
});

test('an integer beyond 2^53 is refused and not shown with invented digits', () => {
  // 2^63-1 in config.json: JSON.parse rounds it to 9223372036854775808
  const msg = configError({ vocab_size: JSON.parse('9223372036854775807') as number });
  assert.match(msg, /vocab_size' must be an integer >= 1, got 9\.22337e\+18 \(beyond 2\^53, too large to be exact\)/);
  assert.ok(!msg.includes('9223372036854776000'), msg);
  assert.equal(showValue(2n ** 63n - 1n), '9223372036854775807', 'a GGUF u64 is exact');
});

test('a cap is reported as the range, not as "must be a positive integer"', () => {
  const header = { moesaic_trace: 1, model: 'm', num_layers: 1, moe_layers: [0], num_experts: 2 ** 20 + 1, top_k: 1 };
  assert.throws(() => validateHeader(header, 'h.jsonl'), /"num_experts" must be an integer in \[1, 1048576\], got 1048577/);
});

test('the demo names its cache folder (not --out) when it cannot write there, and does not hang', () => {
  // /proc answers ENOENT to every create: Node's recursive mkdir used to spin on it forever
  const r = cli(['demo', '--max-tokens', '1'], 120_000, { MOESAIC_CACHE: '/proc/moesaic-demo-cache' });
  assert.equal(r.code, 1, r.stderr);
  const err = r.stderr.trim().split('\n').pop()!;
  assert.match(err, /^moesaic: error \[E_IO\]: .*the demo model's cache folder \/proc\/moesaic-demo-cache\/\S+ \(set MOESAIC_CACHE to use another\)/);
  assert.ok(!err.includes('--out'), err);
});
