import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { fail } from '../../errors.js';
import { mpirunPlan } from '../../parallel/launch.js';
import { inputFileArg, intArg } from '../parse.js';

interface A2aRow {
  bytes_per_pair: number;
  flat_us: number;
  hierarchical_us: number | null;
}

/**
 * `moesaic bench a2a`: the flat all-to-all-v against the hierarchical one (MoNTA) over the same
 * ranks, by message size; the measurement behind `--ep-a2a auto`'s threshold (docs/parallel.md).
 * Across hosts give --hostfile (or OpenMPI's OMPI_MCA_* variables for a launch agent).
 */
export function register(bench: Command): void {
  bench
    .command('a2a')
    .description('flat vs hierarchical (MoNTA) all-to-all-v across hosts, by message size per pair of ranks')
    .requiredOption('--ranks <n>', 'MPI ranks', intArg('--ranks', 2, 4096))
    .option('--hostfile <file>', "mpirun's hostfile (two or more hosts; on one host the hierarchical exchange does not apply)", inputFileArg('--hostfile'))
    .option('--reps <r>', 'timed repetitions per size and exchange (medians)', intArg('--reps', 1, 1000), 20)
    .option('--json', 'print JSON instead of the table')
    .action((o: { ranks: number; hostfile?: string; reps: number; json?: boolean }) => {
      const script = fileURLToPath(new URL('../../bench/a2a-rank.js', import.meta.url));
      const plan = mpirunPlan(o.ranks, [process.execPath, script], [String(o.reps)], { hostfile: o.hostfile, root: process.getuid?.() === 0, env: process.env });
      const r = spawnSync(plan.command, plan.args, { env: plan.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.error || r.status !== 0) fail('E_NATIVE', `bench a2a: mpirun ${r.error ? `failed: ${r.error.message}` : `exited with ${r.status}`}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ranks: number; hosts: number; reps: number; rows: A2aRow[] };
      if (o.json) return void process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
      const lines = [`bench a2a: ${res.ranks} ranks on ${res.hosts} host(s), medians of ${res.reps} (slowest rank's time)`, '', '| bytes per pair | flat us | hierarchical us | flat / hierarchical |', '| ---: | ---: | ---: | ---: |'];
      for (const x of res.rows) {
        const h = x.hierarchical_us;
        lines.push(`| ${x.bytes_per_pair} | ${x.flat_us.toFixed(0)} | ${h === null ? '-' : h.toFixed(0)} | ${h === null ? '-' : (x.flat_us / h).toFixed(2)} |`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
