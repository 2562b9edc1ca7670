import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

/**
 * `moesaic bench <what>`: measurements that compare policies (and competitors) side by side in one
 * run. Each benchmark is one file in ../bench exporting `register(bench: Command)`.
 */
export async function register(program: Command): Promise<void> {
  const bench = program.command('bench').description('benchmarks: policies and competitors side by side, JSON + table');
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');
  if (!existsSync(dir)) return;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js')).sort()) {
    const mod = (await import(join(dir, file))) as { register?: (b: Command) => void };
    mod.register?.(bench);
  }
}
