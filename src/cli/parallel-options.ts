import type { Command } from 'commander';
import type { MoesaicError } from '../errors.js';
import { underMpirun } from '../parallel/mpi-communicator.js';
import { launchRanksIfAsked } from '../parallel/launch.js';

/** commander preAction hook: `--ranks N` outside mpirun restarts the command under mpirun (docs/parallel.md). */
export async function launchHook(_program: Command, action: Command): Promise<void> {
  const o = action.opts() as { ranks?: number; hostfile?: string };
  await launchRanksIfAsked(o.ranks, o.hostfile);
}

/**
 * Under mpirun every rank parses the same command line, so an option error is the same on all of
 * them: only rank 0 prints it. Other errors (a file one host cannot read) are printed by every rank.
 */
export function silentOnThisRank(err: MoesaicError): boolean {
  return err.code === 'E_BAD_OPTION' && underMpirun() && Number(process.env['OMPI_COMM_WORLD_RANK'] ?? '0') !== 0;
}
