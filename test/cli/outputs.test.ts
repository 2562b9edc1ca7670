// Outputs end to end: FIFOs and full disks, a closed stdout, interrupts and killed runs, output paths
// checked before the work, --version.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, ROOT, cli, genModel, removeDir, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-outputs-');
after(() => removeDir(root));
/** Each child gets its own cache folder, so the ledger of temporaries is the test's alone. */
const cacheEnv = (name: string) => ({ ...process.env, MOESAIC_CACHE: join(root, `cache-${name}`) });

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((done) => child.on('close', (code, signal) => done({ code, signal, stdout, stderr })));
}

/**
 * Waits (without a deadline that load could break) until the temporary of `name` in `dir` holds data:
 * a folder, or a file with bytes in it (the output-path check's probe is an empty file that comes and
 * goes first).
 */
async function temporaryOf(dir: string, name: string, child: ChildProcess): Promise<string> {
  const holdsData = (f: string) => {
    try {
      const st = statSync(join(dir, f));
      return st.isDirectory() || st.size > 0;
    } catch {
      return false;
    }
  };
  for (;;) {
    const found = readdirSync(dir).find((f) => f.startsWith(`.${name}.moesaic-tmp-`) && holdsData(f));
    if (found !== undefined) return join(dir, found);
    assert.equal(child.exitCode, null, 'the run ended before its temporary was seen');
    await sleep(5);
  }
}

const temporaries = (dir: string) => readdirSync(dir).filter((f) => f.includes('.moesaic-tmp-') || f.includes('.moesaic-lock'));

test('--version prints the package version', () => {
  const r = cli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
});

test('a FIFO at --out is written, not replaced', async () => {
  const dir = join(root, 'fifo');
  mkdirSync(dir);
  const fifo = join(dir, 'trace.jsonl');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
  const read = collect(reader);
  const r = await collect(spawn(process.execPath, [BIN, 'gen-trace', '--out', fifo, '--experts', '8', '--layers', '2', '--steps', '3'], { env: cacheEnv('fifo') }));
  const stillFifo = lstatSync(fifo).isFIFO();
  if (!stillFifo) reader.kill(); // the old behaviour: nobody ever opens the FIFO
  assert.equal(r.code, 0, r.stderr);
  assert.ok(stillFifo, 'the FIFO was replaced by a regular file');
  const lines = (await read).stdout.trim().split('\n');
  assert.equal(lines.length, 1 + 3 * 2);
  assert.equal((JSON.parse(lines[0]!) as { moesaic_trace: number }).moesaic_trace, 1);
  assert.deepEqual(temporaries(dir), []);
});

test('a full disk leaves no partial report and no temporary, with a one-line E_IO error', async () => {
  const dir = join(root, 'full');
  mkdirSync(join(dir, 'report'), { recursive: true });
  const trace = join(dir, 't.jsonl');
  assert.equal(cli(['gen-trace', '--out', trace, '--experts', '64', '--layers', '4', '--steps', '60']).code, 0);
  // a file-size limit of 4 KiB makes every larger write fail with EFBIG, as a full disk fails with ENOSPC
  const script = `trap '' XFSZ; ulimit -f 4; exec "${process.execPath}" "${BIN}" analyze "${trace}" --out "${join(dir, 'report')}"`;
  const r = await collect(spawn('bash', ['-c', script], { env: cacheEnv('full') }));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^moesaic: error \[E_IO\]: cannot write --out \S+analysis\.json: EFBIG/m);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(readdirSync(join(dir, 'report')), [], 'nothing half-written, no temporary');
});

test('a closed stdout ends logits, generate and analyze --json quietly', async () => {
  const model = await genModel(join(root, 'model'), 'mixtral', { seed: 2 });
  const trace = join(root, 'epipe.jsonl');
  assert.equal(cli(['gen-trace', '--out', trace, '--experts', '8', '--layers', '2', '--steps', '4']).code, 0);
  for (const args of [
    ['logits', '--model', model, '--ids', '1,2,3'],
    ['generate', '--model', model, '--ids', '1,2', '--max-tokens', '8', '--json'],
    ['analyze', '--json', trace],
  ]) {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cacheEnv('epipe') });
    child.stdout!.destroy(); // the reader is gone before the first write, as after `| head -c 0`
    const r = await collect(child);
    assert.equal(r.stderr, '', `${args[0]}: ${r.stderr}`);
    assert.equal(r.code, 0, args[0]);
  }
});

/**
 * Runs `args` in a fresh folder `dir`, interrupts it with SIGINT once its output `name` is being
 * written, and checks: exit 130, one line saying what was removed, nothing left in the folder.
 */
async function interruptWhileWriting(dir: string, name: string, args: string[]): Promise<void> {
  mkdirSync(dir);
  const child = spawn(process.execPath, [BIN, ...args], { env: cacheEnv(basename(dir)) });
  const exit = collect(child);
  await temporaryOf(dir, name, child);
  // stopped first, so the interrupt surely lands while the output is being written
  child.kill('SIGSTOP');
  child.kill('SIGINT');
  child.kill('SIGCONT');
  const r = await exit;
  assert.equal(r.code, 130, `exit ${r.code} ${r.signal}: ${r.stderr}`);
  assert.match(r.stderr, /^moesaic: interrupted by SIGINT; removed 1 unfinished output$/m);
  assert.deepEqual(readdirSync(dir), [], 'no temporary and no half-written output');
}

test('Ctrl-C removes the run\'s temporary folder and prints one line', async () => {
  const dir = join(root, 'sigint');
  await interruptWhileWriting(dir, 'm', ['gen-model', '--arch', 'olmoe', '--size', 'small', '--out', join(dir, 'm')]);
});

test('Ctrl-C during gen-trace removes its unfinished trace', async () => {
  const dir = join(root, 'sigint-trace');
  await interruptWhileWriting(dir, 't.jsonl', ['gen-trace', '--out', join(dir, 't.jsonl'), '--experts', '64', '--layers', '4', '--steps', '50000']);
});

test('the temporaries of a killed run are removed by the next run of any command', async () => {
  const dir = join(root, 'sigkill');
  mkdirSync(dir);
  const env = cacheEnv('sigkill');
  const child = spawn(process.execPath, [BIN, 'gen-model', '--arch', 'olmoe', '--size', 'small', '--out', join(dir, 'm')], { env });
  const exit = collect(child);
  const tmp = await temporaryOf(dir, 'm', child);
  child.kill('SIGKILL'); // no handler runs
  assert.equal((await exit).signal, 'SIGKILL');
  assert.ok(existsSync(tmp));
  const r = await collect(spawn(process.execPath, [BIN, '--version'], { env }));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!existsSync(tmp), 'the stale temporary is gone');
  assert.deepEqual(readdirSync(dir), []);
});

test('bench gating and simulate check their output paths before any work', async () => {
  // /proc takes no new files, even from root
  for (const [args, flag] of [
    [['bench', 'gating', '--preset', 'lm', '--out', '/proc/moesaic-out.json'], '--out'],
    [['bench', 'gating', '--preset', 'lm', '--svg', '/proc/moesaic-out.svg'], '--svg'],
  ] as const) {
    const r = cli([...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^moesaic: error \\[E_IO\\]: ${flag} /proc/moesaic-out\\.\\w+: `));
    assert.equal(r.stderr.trim().split('\n').length, 1, `no work before the error: ${r.stderr}`);
  }
  const trace = join(root, 'sim.jsonl');
  assert.equal(cli(['gen-trace', '--out', trace, '--experts', '8', '--layers', '2', '--steps', '3']).code, 0);
  const r = cli(['simulate', 'cache', '--trace', trace, '--sweep', '1..2', '--out', join(root, 'sim-out.txt'), '--chart', '/proc/x.svg']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^moesaic: error \[E_IO\]: --chart \/proc\/x\.svg: /);
});
