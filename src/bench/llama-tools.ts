import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fail } from '../errors.js';
import { processAlive } from '../io/temporaries.js';
import { ensureNodeLlamaCpp } from './llama-install.js';

/**
 * llama.cpp's own command-line tools (`llama-bench`, `llama-quantize`), built from the source bundle
 * that ships inside the node-llama-cpp package (`llama/gitRelease.bundle`) with the machine's cmake,
 * ninja and C++ compiler; nothing is downloaded but node-llama-cpp itself from the npm registry.
 *
 * A comparison against llama.cpp must run llama.cpp the way its authors benchmark it: `llama-bench`
 * drives ggml's thread pool directly, whereas node-llama-cpp adds a libuv worker and the main thread
 * waking per token beside that pool, which on a 2-core machine costs it about 40% of its decode speed
 * at 2 threads. The build is cached in the moesaic cache folder under `llama.cpp/<bundle hash>/`, so a
 * new node-llama-cpp release (a new bundle) gets its own build and an old one is never reused for it.
 */

/** The tools `ensureLlamaCppTools` builds. */
export const LLAMA_CPP_TOOLS = ['llama-bench', 'llama-quantize'] as const;
export type LlamaCppTool = (typeof LLAMA_CPP_TOOLS)[number];

/** cmake flags of the build: native ISA (what the machine can run), no network code, no tests. */
const CMAKE_FLAGS = ['-DLLAMA_CURL=OFF', '-DGGML_NATIVE=ON', '-DCMAKE_BUILD_TYPE=Release', '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_SERVER=OFF'];

export interface LlamaCppTools {
  /** the cache folder of this build: `<cacheRoot>/llama.cpp/<bundle hash>` */
  readonly dir: string;
  /** absolute paths of the built executables */
  readonly paths: Readonly<Record<LlamaCppTool, string>>;
  /** which llama.cpp: the bundle's commit and the release node-llama-cpp names */
  readonly release: string;
}

/** First 16 hex digits of the bundle's sha256: the name of its build folder. */
export function bundleHash(bundle: string): string {
  return createHash('sha256').update(readFileSync(bundle)).digest('hex').slice(0, 16);
}

/**
 * Where the build of `bundle` lives and where each tool is in it, whether or not it is built yet.
 * The one place this layout is spelled out (the quantized-model code finds `llama-quantize` here).
 */
export function llamaCppBuildPaths(cacheRoot: string, hash: string): { dir: string; src: string; build: string; marker: string; paths: Record<LlamaCppTool, string> } {
  const dir = join(cacheRoot, 'llama.cpp', hash);
  const build = join(dir, 'build');
  const paths = Object.fromEntries(LLAMA_CPP_TOOLS.map((t) => [t, join(build, 'bin', t)])) as Record<LlamaCppTool, string>;
  return { dir, src: join(dir, 'src'), build, marker: join(dir, 'built.json'), paths };
}

/**
 * The built tools, building them first when this bundle has no finished build (about 10 minutes on 2
 * cores; ninja's progress is logged every 10%). A marker written after the build is what makes a
 * build count as finished, so an interrupted build is resumed (ninja skips what it has), never used.
 * Two processes never build into one folder: the second fails clearly while the first is alive.
 */
export async function ensureLlamaCppTools(cacheRoot: string, log: (msg: string) => void): Promise<LlamaCppTools> {
  const pkg = ensureNodeLlamaCpp(cacheRoot, log);
  const llamaDir = join(packageDirOf(pkg.entry), 'llama');
  const bundle = join(llamaDir, 'gitRelease.bundle');
  if (!existsSync(bundle)) fail('E_NATIVE', `node-llama-cpp ${pkg.version} has no llama.cpp source bundle at ${bundle}`);
  const release = releaseOf(llamaDir);
  const p = llamaCppBuildPaths(cacheRoot, bundleHash(bundle));
  if (existsSync(p.marker) && LLAMA_CPP_TOOLS.every((t) => existsSync(p.paths[t]))) {
    return { dir: p.dir, paths: p.paths, release };
  }
  for (const tool of ['git', 'cmake', 'ninja']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) {
      fail('E_NATIVE', `building llama.cpp's tools needs ${tool} (apt-get install git cmake ninja-build g++)`);
    }
  }
  mkdirSync(p.dir, { recursive: true });
  const unlock = lockFolder(join(p.dir, 'build.lock'));
  try {
    if (!existsSync(join(p.src, 'CMakeLists.txt'))) {
      rmSync(p.src, { recursive: true, force: true });
      log(`cloning the llama.cpp source bundle of node-llama-cpp ${pkg.version} (${release}) into ${p.src} ...`);
      await runLogged('git', ['clone', '--quiet', bundle, p.src], log);
    }
    if (!existsSync(join(p.build, 'build.ninja'))) {
      log(`configuring llama.cpp (cmake ${CMAKE_FLAGS.join(' ')}) ...`);
      await runLogged('cmake', ['-S', p.src, '-B', p.build, '-G', 'Ninja', ...CMAKE_FLAGS], log);
    }
    log(`building ${LLAMA_CPP_TOOLS.join(', ')} with ninja (about 10 minutes on 2 cores; cached afterwards) ...`);
    const started = Date.now();
    await runLogged('ninja', ['-C', p.build, ...LLAMA_CPP_TOOLS], log, ninjaProgress(log));
    for (const t of LLAMA_CPP_TOOLS) if (!existsSync(p.paths[t])) fail('E_NATIVE', `ninja finished but ${p.paths[t]} is missing`);
    writeFileSync(p.marker, `${JSON.stringify({ release, flags: CMAKE_FLAGS, tools: LLAMA_CPP_TOOLS, at: new Date().toISOString() })}\n`);
    log(`  built in ${((Date.now() - started) / 1000).toFixed(0)} s: ${p.build}/bin`);
  } finally {
    unlock();
  }
  return { dir: p.dir, paths: p.paths, release };
}

/** The folder of the node-llama-cpp package whose entry module is `entry` (holds package.json). */
function packageDirOf(entry: string): string {
  let dir = dirname(entry);
  for (let i = 0; i < 5; i++, dir = dirname(dir)) if (existsSync(join(dir, 'llama', 'gitRelease.bundle')) || existsSync(join(dir, 'package.json'))) return dir;
  return dirname(entry);
}

/** "ggml-org/llama.cpp <tag>" from node-llama-cpp's llama.cpp.info.json, else "llama.cpp (unknown release)". */
function releaseOf(llamaDir: string): string {
  try {
    const info = JSON.parse(readFileSync(join(llamaDir, 'llama.cpp.info.json'), 'utf8')) as { tag?: string; llamaCppGithubRepo?: string };
    return `${info.llamaCppGithubRepo ?? 'llama.cpp'} ${info.tag ?? '?'}`;
  } catch {
    return 'llama.cpp (unknown release)';
  }
}

/** ninja prints "[done/total] ..." per step: one log line each time another 10% is done. */
export function ninjaProgress(log: (msg: string) => void): (line: string) => void {
  let lastDecile = -1;
  return (line) => {
    const m = /^\[(\d+)\/(\d+)\]/.exec(line);
    if (!m) return;
    const decile = Math.floor((10 * Number(m[1])) / Number(m[2]));
    if (decile > lastDecile) {
      lastDecile = decile;
      log(`  ninja ${m[1]}/${m[2]} (${decile * 10}%)`);
    }
  };
}

/** Run a command; each stdout/stderr line goes to onLine; a failure ends with its last lines. */
async function runLogged(cmd: string, args: string[], log: (msg: string) => void, onLine: (line: string) => void = () => {}): Promise<void> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  let partial = '';
  const take = (d: Buffer) => {
    const lines = (partial + d.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      onLine(l);
      tail.push(l);
      if (tail.length > 12) tail.shift();
    }
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    log(tail.join('\n'));
    fail('E_NATIVE', `${cmd} ${args.slice(0, 3).join(' ')} ... failed (exit ${code}); see the lines above`);
  }
}

/**
 * An exclusive lock file holding our pid, created with O_EXCL. A lock whose process is gone (a killed
 * build) is taken over; a live one is a clear error rather than two builds in one folder.
 */
function lockFolder(lock: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(lock, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        fail('E_IO', `another process (pid ${pid}) is building llama.cpp in ${dirname(lock)}; wait for it to finish`);
      }
      rmSync(lock, { force: true });
    }
  }
  fail('E_IO', `cannot lock ${lock}`);
}
