import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fail } from '../errors.js';

/**
 * node-llama-cpp, installed on first use into the moesaic cache folder (never a dependency of
 * moesaic). The version is pinned so that a comparison names exactly what it compared against.
 * The small install is node-llama-cpp plus only this platform's prebuilt CPU binaries (~85 MB);
 * if that fails or the binary does not load, the full install (~725 MB with every GPU variant) is
 * tried. Nothing is ever compiled (build: 'never').
 */
export const NODE_LLAMA_CPP_VERSION = '3.22.1';

export interface NodeLlamaCppInstall {
  readonly dir: string;
  /** the package's ESM entry module, for `import()` by file URL */
  readonly entry: string;
  readonly version: string;
}

export function ensureNodeLlamaCpp(cacheRoot: string, log: (msg: string) => void): NodeLlamaCppInstall {
  const dir = join(cacheRoot, 'node-llama-cpp');
  const marker = join(dir, '.moesaic-installed.json');
  const pkgDir = join(dir, 'node_modules', 'node-llama-cpp');
  if (existsSync(marker)) {
    const m = JSON.parse(readFileSync(marker, 'utf8')) as { version?: string };
    if (m.version === NODE_LLAMA_CPP_VERSION && existsSync(join(pkgDir, 'package.json'))) {
      return { dir, entry: entryOf(pkgDir), version: NODE_LLAMA_CPP_VERSION };
    }
  }
  mkdirSync(dir, { recursive: true });
  // a package.json of its own keeps npm from walking up into whatever project surrounds the cache
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), '{ "private": true, "name": "moesaic-node-llama-cpp" }\n');

  const pkg = `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`;
  const platformPkg = platformPackage();
  const attempts: { what: string; args: string[] }[] = [];
  if (platformPkg) {
    attempts.push({ what: `${pkg} with ${platformPkg} only (~85 MB)`, args: [pkg, `${platformPkg}@${NODE_LLAMA_CPP_VERSION}`, '--omit=optional'] });
  }
  attempts.push({ what: `${pkg} with every prebuilt binary (~725 MB)`, args: [pkg] });

  const errors: string[] = [];
  for (const a of attempts) {
    log(`installing ${a.what} into ${dir} (first use of --vs llama.cpp) ...`);
    const started = Date.now();
    const r = spawnSync(npmCommand(), ['install', '--prefix', dir, ...a.args, '--no-audit', '--no-fund'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      // the postinstall must not try to download or compile llama.cpp: the prebuilt binaries are the point
      env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
    });
    if (r.error || r.status !== 0) {
      errors.push(`${a.what}: ${r.error?.message ?? (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
      log(`  npm install failed; ${errors[errors.length - 1]}`);
      continue;
    }
    log(`  installed in ${((Date.now() - started) / 1000).toFixed(0)} s; checking that the prebuilt CPU binary loads ...`);
    const probe = probeLoads(dir, pkgDir);
    if (probe === null) {
      writeFileSync(marker, `${JSON.stringify({ version: NODE_LLAMA_CPP_VERSION, installed: a.what, at: new Date().toISOString() })}\n`);
      return { dir, entry: entryOf(pkgDir), version: NODE_LLAMA_CPP_VERSION };
    }
    errors.push(`${a.what}: the binary does not load: ${probe}`);
    log(`  ${errors[errors.length - 1]}`);
  }
  fail('E_NATIVE', `could not install a working node-llama-cpp into ${dir}:\n  ${errors.join('\n  ')}`);
}

/** The prebuilt-binary package for this platform, or undefined where node-llama-cpp has none. */
function platformPackage(): string | undefined {
  const os = { linux: 'linux', darwin: 'mac', win32: 'win' }[process.platform as string];
  if (!os) return undefined;
  const suffix = process.platform === 'darwin' && process.arch === 'arm64' ? '-metal' : '';
  return `@node-llama-cpp/${os}-${process.arch}${suffix}`;
}

/** npm beside the running node, else the one on PATH. */
function npmCommand(): string {
  const beside = join(dirname(process.execPath), process.platform === 'win32' ? 'npm.cmd' : 'npm');
  return existsSync(beside) ? beside : 'npm';
}

function entryOf(pkgDir: string): string {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { main?: string; exports?: Record<string, unknown> };
  const dot = pkg.exports?.['.'];
  const fromExports = typeof dot === 'string' ? dot : (dot as { import?: unknown; default?: unknown } | undefined)?.import ?? (dot as { default?: unknown } | undefined)?.default;
  const rel = typeof fromExports === 'string' ? fromExports : (pkg.main ?? 'dist/index.js');
  return join(pkgDir, rel);
}

/**
 * null when `getLlama({ gpu: false, build: 'never' })` works in a fresh process, else the error.
 * The probe is a file, not `node -e`: node-llama-cpp tests its binary in a fork that inherits the
 * parent's execArgv, and an inherited `-e` would run the probe again instead of the test.
 */
function probeLoads(dir: string, pkgDir: string): string | null {
  const probe = join(dir, 'moesaic-probe.mjs');
  writeFileSync(
    probe,
    `const m = await import(${JSON.stringify(pathToFileURL(entryOf(pkgDir)).href)});\n` +
      `const l = await m.getLlama({ gpu: false, build: 'never', logLevel: 'error' });\n` +
      `console.log(l.buildType);\n`,
  );
  const r = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: 180_000 });
  return r.status === 0 ? null : (r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(0, 2).join(' | ');
}
