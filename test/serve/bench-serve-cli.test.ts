// `moesaic bench serve` end to end on a tiny model: both configurations serve every request with
// exactly max_tokens tokens, the JSON holds one run per repetition and the saturation share; a bad
// configuration name is one clear error. Nothing here depends on timing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { genModel, removeDir, tempDir } from '../reference/harness.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'moesaic.js');
const root = tempDir('moesaic-bench-serve-');
const dir = join(root, 'tiny');

before(async () => {
  await genModel(dir, 'mixtral', { seed: 3, dtype: 'f32' });
});
after(() => removeDir(root));

/** Runs the CLI without blocking the event loop; resolves with its exit status and output. */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, 'bench', 'serve', ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface Summary {
  tokensPerS: number;
  failed: number;
  saturated: number;
}

test('bench serve: every request of both configurations completes; JSON has the runs; all at once saturates; the table states the ratio', async () => {
  const r = await run(['--model', dir, '--clients', '3', '--requests', '6', '--max-tokens', '4', '--prompt-lengths', '3,9', '--rate', '0', '--reps', '2', '--configs', 'continuous,one-at-a-time', '--threads', '1', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const table = await run(['--model', dir, '--clients', '3', '--requests', '6', '--max-tokens', '4', '--prompt-lengths', '3,9', '--rate', '0', '--reps', '1', '--configs', 'one-at-a-time,continuous', '--threads', '1']);
  assert.equal(table.status, 0, table.stderr);
  const headline = /continuous batching: (\d+\.\d\d)x the tokens\/s of one request at a time at 3 clients \(TTFT p99 \d+ against \d+ ms\)/.exec(table.stdout);
  assert.ok(headline, table.stdout);
  const rows = Object.fromEntries([...table.stdout.matchAll(/^\| (continuous|one-at-a-time) \| ([\d.]+) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  assert.ok(Math.abs(Number(headline[1]) - rows.continuous! / rows['one-at-a-time']!) < 0.02, `${headline[1]} vs the table's ${JSON.stringify(rows)}`);
  const out = JSON.parse(r.stdout) as { medians: Record<string, Summary>; runs: Record<string, Summary[]>; rate: number; requests: number };
  assert.deepEqual(Object.keys(out.medians), ['continuous', 'one-at-a-time']);
  assert.equal(out.rate, 0);
  for (const name of ['continuous', 'one-at-a-time']) {
    assert.equal(out.runs[name]!.length, 2);
    for (const s of out.runs[name]!) {
      assert.equal(s.failed, 0, `${name}: ${r.stderr}`);
      assert.ok(s.tokensPerS > 0);
      // all at once (rate 0): every request after the first 3 finds the 3 clients busy
      assert.equal(s.saturated, 1);
    }
  }
});

test('bench serve: an unknown configuration is one clear error', async () => {
  const r = await run(['--model', dir, '--configs', 'continuous,warp-speed']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--configs: unknown configuration 'warp-speed' \(available: continuous, one-at-a-time, static-gating, lynx\)/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
