import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fail } from '../errors.js';
import { underMpirun } from './mpi-communicator.js';

/**
 * `--ranks N`: the CLI restarts itself as N ranks under OpenMPI's mpirun (docs/parallel.md). The
 * arguments are those of this run less `--ranks`, so every rank parses the same command; running
 * `mpirun -np N moesaic ...` by hand is the same thing. Facts of these machines baked in:
 *  - more ranks than cores need --oversubscribe, and busy-polling ranks on few cores need
 *    `mpi_yield_when_idle` (otherwise a waiting rank spins on the core its peer needs);
 *  - binding ranks to cores is off: each rank has its own kernel thread pool;
 *  - root needs OpenMPI's two run-as-root variables.
 */
export interface LaunchPlan {
  readonly command: string;
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** The mpirun command line that runs `script args` as `ranks` ranks (pure: tests check it). */
export function mpirunPlan(ranks: number, script: readonly string[], args: readonly string[], opts: { hostfile?: string; root: boolean; env: NodeJS.ProcessEnv }): LaunchPlan {
  const mpiArgs = ['-np', String(ranks), '--quiet', '--oversubscribe', '--bind-to', 'none', '--mca', 'mpi_yield_when_idle', '1'];
  if (opts.hostfile) mpiArgs.push('--hostfile', opts.hostfile);
  const env = { ...opts.env };
  if (opts.root) {
    env['OMPI_ALLOW_RUN_AS_ROOT'] = '1';
    env['OMPI_ALLOW_RUN_AS_ROOT_CONFIRM'] = '1';
  }
  return { command: 'mpirun', args: [...mpiArgs, ...script, ...withoutRanks(args)], env };
}

/** argv less `--ranks N` / `--ranks=N` and `--hostfile F` (mpirun's business, not the ranks'). */
export function withoutRanks(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--ranks' || a === '--hostfile') i++;
    else if (!a.startsWith('--ranks=') && !a.startsWith('--hostfile=')) out.push(a);
  }
  return out;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Called before a command runs. With --ranks N outside mpirun: run mpirun and exit with its status.
 * Inside mpirun: --ranks, when given, must match the world size. Returns normally when this process
 * is the one to do the work. A SIGINT/SIGTERM/SIGHUP sent to this process alone (`timeout`, `kill`, a
 * supervisor) is passed on to mpirun, which stops the ranks, and this process waits for it: otherwise
 * mpirun and the ranks would run on as orphans.
 */
export async function launchRanksIfAsked(ranks: number | undefined, hostfile: string | undefined): Promise<void> {
  if (ranks === undefined) {
    if (hostfile !== undefined) fail('E_BAD_OPTION', '--hostfile needs --ranks N');
    return;
  }
  if (underMpirun()) {
    const size = Number(process.env['OMPI_COMM_WORLD_SIZE'] ?? ranks);
    if (size !== ranks) fail('E_BAD_OPTION', `--ranks ${ranks} but mpirun started ${size} ranks`);
    return;
  }
  const plan = mpirunPlan(ranks, [process.execPath, ...process.execArgv, process.argv[1]!], process.argv.slice(2), {
    hostfile,
    root: process.getuid?.() === 0,
    env: process.env,
  });
  const child = spawn(plan.command, plan.args, { stdio: 'inherit', env: plan.env });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);
  const status = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + constants.signals[signal] : 1)));
  }).catch((err: NodeJS.ErrnoException) => {
    fail('E_BAD_OPTION', err.code === 'ENOENT' ? '--ranks needs mpirun: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev)' : `mpirun failed: ${err.message}`);
  });
  process.exit(status);
}
