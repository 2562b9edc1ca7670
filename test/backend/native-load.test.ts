import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { supportedIsas } from '../../src/tensor/cpu-backend.js';

/** Loading the addon: MOESAIC_ISA forces an instruction set at load, and a bad value is a clear error. */

const cpuBackendUrl = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'tensor', 'cpu-backend.js')).href;

function isaInChild(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const script = `
    const m = await import(${JSON.stringify(cpuBackendUrl)});
    try { console.log(m.isa()); } catch (e) { console.log('ERR ' + e.code + ' ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

test('MOESAIC_ISA forces each supported instruction set at load', () => {
  for (const name of supportedIsas()) {
    const r = isaInChild({ MOESAIC_ISA: name });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, name);
  }
});

test('without MOESAIC_ISA the best supported instruction set is chosen', () => {
  const env = { ...process.env };
  delete env['MOESAIC_ISA'];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(cpuBackendUrl)}); console.log(m.isa());`], {
    env,
    encoding: 'utf8',
  });
  assert.equal(r.stdout.trim(), supportedIsas().at(-1));
});

/**
 * The instruction sets a CPU with these /proc/cpuinfo flags must get, written out independently of
 * the addon's detection: AVX2 kernels use FMA and F16C too; the AVX-512 ones use F, BW, VL and DQ.
 */
function isasForFlags(flags: ReadonlySet<string>): string[] {
  const out = ['portable'];
  const avx2 = ['avx2', 'fma', 'f16c'].every((f) => flags.has(f));
  if (avx2) out.push('avx2');
  if (avx2 && ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.has(f))) out.push('avx512');
  return out;
}

function cpuinfoFlags(): Set<string> | undefined {
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return line ? new Set(line[1]!.trim().split(/\s+/)) : undefined;
  } catch {
    return undefined;
  }
}

test('ISA detection: the instruction sets /proc/cpuinfo lists are detected, and the best is chosen by default', (t) => {
  const flags = cpuinfoFlags();
  if (!flags || process.arch !== 'x64') {
    t.skip('no /proc/cpuinfo flags on this machine (not x86-64 Linux)');
    return;
  }
  const expected = isasForFlags(flags);
  assert.deepEqual(supportedIsas(), expected, `flags avx2=${flags.has('avx2')} avx512f=${flags.has('avx512f')}`);
  const env = { ...process.env };
  delete env['MOESAIC_ISA'];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(cpuBackendUrl)}); console.log(m.isa());`], { env, encoding: 'utf8' });
  assert.equal(r.stdout.trim(), expected.at(-1), r.stderr);
});

test('an unknown MOESAIC_ISA is refused with E_BAD_OPTION naming the variable', () => {
  const r = isaInChild({ MOESAIC_ISA: 'avx9000' });
  assert.match(r.stdout, /^ERR E_BAD_OPTION MOESAIC_ISA=avx9000/);
});

test('a missing addon build is E_NATIVE with the fix in the message', () => {
  // A copy of the compiled loader in a package tree that has no build/ folder.
  const root = mkdtempSync(join(tmpdir(), 'moesaic-noaddon-'));
  try {
    const here = dirname(fileURLToPath(import.meta.url)); // dist/test/backend
    const distSrc = join(here, '..', '..', 'src');
    mkdirSync(join(root, 'dist', 'src', 'tensor'), { recursive: true });
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    copyFileSync(join(distSrc, 'errors.js'), join(root, 'dist', 'src', 'errors.js'));
    copyFileSync(join(distSrc, 'tensor', 'native.js'), join(root, 'dist', 'src', 'tensor', 'native.js'));
    const url = pathToFileURL(join(root, 'dist', 'src', 'tensor', 'native.js')).href;
    const script = `
      const m = await import(${JSON.stringify(url)});
      console.log(m.nativeAvailable());
      try { m.nativeAddon(); } catch (e) { console.log(e.code + ' ' + e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const [available, error] = r.stdout.trim().split('\n');
    assert.equal(available, 'false', r.stderr);
    assert.match(error ?? '', /^E_NATIVE native addon not built: run npm install/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
