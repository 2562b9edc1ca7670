// The llama.cpp side of `bench generate --vs llama.cpp` without llama.cpp: the llama-bench command
// lines (prefill from an empty context; decode after a prompt-long depth), reading its JSON, the
// build-cache layout other code relies on, and ninja progress lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { llamaBenchArgs, llamaBenchMs } from '../../src/bench/llama-bench-run.js';
import { LLAMA_CPP_TOOLS, llamaCppBuildPaths, ninjaProgress } from '../../src/bench/llama-tools.js';
import { MoesaicError } from '../../src/errors.js';

test('llama-bench arguments: prefill -p P -n 0; decode -p 0 -n N at depth P; one repetition each, JSON', () => {
  const a = llamaBenchArgs('/m.gguf', 128, 64, 2);
  const opt = (args: string[], flag: string) => args[args.indexOf(flag) + 1];
  for (const args of [a.prefill, a.decode]) {
    assert.equal(opt(args, '-m'), '/m.gguf');
    assert.equal(opt(args, '-t'), '2');
    assert.equal(opt(args, '-r'), '1');
    assert.equal(opt(args, '-o'), 'json');
  }
  assert.deepEqual([opt(a.prefill, '-p'), opt(a.prefill, '-n'), a.prefill.includes('-d')], ['128', '0', false]);
  assert.deepEqual([opt(a.decode, '-p'), opt(a.decode, '-n'), opt(a.decode, '-d')], ['0', '64', '128']);
});

const record = (o: Record<string, unknown>) => ({ build_commit: 'abc', n_threads: 2, n_depth: 0, n_prompt: 0, n_gen: 0, avg_ns: 1, ...o });

test('llamaBenchMs picks the record with the asked token counts and depth', () => {
  const text = JSON.stringify([
    record({ n_prompt: 128, avg_ns: 200e6 }),
    record({ n_gen: 64, n_depth: 0, avg_ns: 900e6 }),
    record({ n_gen: 64, n_depth: 128, avg_ns: 1000e6 }),
  ]);
  assert.equal(llamaBenchMs(text, { prompt: 128, gen: 0, depth: 0 }).ms, 200);
  assert.equal(llamaBenchMs(text, { prompt: 0, gen: 64, depth: 128 }).ms, 1000);
  assert.throws(() => llamaBenchMs(text, { prompt: 0, gen: 32, depth: 128 }), (e: MoesaicError) => e.code === 'E_NATIVE' && /n_gen 32/.test(e.message));
  assert.throws(() => llamaBenchMs('error: model not found', { prompt: 1, gen: 0, depth: 0 }), (e: MoesaicError) => e.code === 'E_NATIVE' && /no JSON: error: model not found/.test(e.message));
});

test('the llama.cpp build cache: one folder per bundle hash, tools in build/bin', () => {
  const p = llamaCppBuildPaths('/cache', '0123456789abcdef');
  assert.equal(p.dir, join('/cache', 'llama.cpp', '0123456789abcdef'));
  assert.equal(p.paths['llama-quantize'], join(p.dir, 'build', 'bin', 'llama-quantize'));
  assert.deepEqual(Object.keys(p.paths), [...LLAMA_CPP_TOOLS]);
});

test('ninja progress: one line per 10% reached, other lines ignored', () => {
  const lines: string[] = [];
  const on = ninjaProgress((m) => lines.push(m));
  for (let i = 1; i <= 40; i++) on(`[${i}/40] Building CXX object x${i}.o`);
  on('FAILED: something');
  assert.equal(lines.length, 11);
  assert.equal(lines[0], '  ninja 1/40 (0%)');
  assert.equal(lines[1], '  ninja 4/40 (10%)');
  assert.equal(lines[10], '  ninja 40/40 (100%)');
});
