import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { MoesaicError } from '../errors.js';
import { launchHook, silentOnThisRank } from './parallel-options.js';

/**
 * The `moesaic` command. Each subcommand is one file in ./commands exporting `register(program)`;
 * they are found by file name, so adding a command never edits a shared list.
 */
export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const program = new Command('moesaic')
    .description('Mixture-of-Experts inference engine: run, trace, simulate and benchmark MoE models')
    .option('--debug', 'print stack traces on errors')
    .hook('preAction', launchHook)
    .exitOverride()
    // parser errors (unknown option, missing value) in the same one-line form as every other error
    .configureOutput({ outputError: (text, write) => write(`moesaic: error [E_BAD_OPTION]: ${text.replace(/^error: /, '').trimEnd()} (see --help)\n`) });
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js')).sort();
  for (const file of files) {
    const mod = (await import(join(dir, file))) as { register?: (p: Command) => void | Promise<void> };
    await mod.register?.(program);
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    process.exitCode = reportError(err, debug);
  }
}

function reportError(err: unknown, debug: boolean): number {
  if (err instanceof CommanderError) {
    // commander already printed its message (or the help text, which exits 0)
    return err.exitCode;
  }
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
