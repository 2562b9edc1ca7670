// `npm test` itself: it runs test files only (helper modules are not tests) and builds from a clean
// dist/, so the compiled copy of a deleted test cannot keep running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../reference/harness.js';

const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { test: string } }).scripts.test;

test('npm test removes dist/ before it compiles', () => {
  const steps = script.split('&&').map((s) => s.trim());
  const clean = steps.findIndex((s) => /^rm -rf dist$/.test(s));
  const build = steps.findIndex((s) => s.startsWith('tsc '));
  assert.ok(clean >= 0 && clean < build, script);
});

test('npm test runs every compiled test file and nothing else', () => {
  const run = script.split('&&').map((s) => s.trim()).find((s) => s.startsWith('node --test'))!;
  const args = run.replace(/^node --test( --[\w-]+=\S+)*\s*/, '');
  const files = execFileSync('sh', ['-c', `printf '%s\\n' ${args}`], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n');
  assert.ok(files.length > 20, `${files.length} files`);
  for (const f of files) {
    assert.match(f, /^dist\/test\/.+\.test\.js$/);
    assert.ok(existsSync(join(ROOT, f.replace(/^dist\//, '').replace(/\.js$/, '.ts'))), `${f} has no source`);
  }
  assert.ok(files.includes('dist/test/cli/test-command.test.js'));
});
