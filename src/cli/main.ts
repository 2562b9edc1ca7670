import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { MoesaicError } from '../errors.js';
import { installClosedStdoutHandling, installInterruptHandling, isClosedPipe } from '../io/signals.js';
import { sweepStaleTemporaries, useLedger } from '../io/temporaries.js';
import { cacheDir } from './cache-dir.js';
import { silentOnThisRank } from './parallel-options.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * The `moesaic` command. Each subcommand is one file in ./commands exporting `register(program)`;
 * they are found by file name, so adding a command never edits a shared list. Only the command being
 * run is imported (importing all of them costs most of a second); help and unknown commands load all.
 */
export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  installClosedStdoutHandling();
  installInterruptHandling();
  useLedger(join(cacheDir(), 'temporaries'));
  sweepStaleTemporaries();
  const program = new Command('moesaic')
    .description('Mixture-of-Experts inference engine: run, trace, simulate and benchmark MoE models')
    .version(packageVersion(), '--version', 'print the moesaic version')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    // parser errors (unknown option, missing value) in the same one-line form as every other error
    .configureOutput({ outputError: (text, write) => write(`moesaic: error [E_BAD_OPTION]: ${text.replace(/^error: /, '').trimEnd()} (see --help)\n`) });
  try {
    for (const file of commandFiles(argv)) {
      const mod = (await import(join(HERE, 'commands', file))) as { register?: (p: Command) => void | Promise<void> };
      await mod.register?.(program);
    }
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    process.exitCode = reportError(err, debug);
  }
}

/** The file of the command named in argv, or every command file (for help or a misspelt name). */
function commandFiles(argv: string[]): string[] {
  const name = argv.find((a) => !a.startsWith('-'));
  if (name !== undefined && /^[a-z][a-z0-9-]*$/.test(name) && existsSync(join(HERE, 'commands', `${name}.js`))) return [`${name}.js`];
  return readdirSync(join(HERE, 'commands')).filter((f) => f.endsWith('.js')).sort();
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(HERE, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

function reportError(err: unknown, debug: boolean): number {
  if (err instanceof CommanderError) {
    // commander already printed its message (or the help text / version, which exit 0)
    return err.exitCode;
  }
  if (isClosedPipe(err)) return 0; // stdout closed by the reader (`| head`): stop quietly
  if (err instanceof MoesaicError) {
    if (silentOnThisRank(err)) return 1;
    process.stderr.write(`moesaic: error [${err.code}]: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (debug) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  const e = err as Error;
  process.stderr.write(`moesaic: internal error: ${e?.message ?? String(err)}\n`);
  if (debug) process.stderr.write(`${e?.stack}\n`);
  return 1;
}
