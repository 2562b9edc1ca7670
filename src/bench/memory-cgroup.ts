import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';

/** Where the cgroup v1 memory controller is mounted on these machines. */
export const CGROUP_V1_MEMORY = '/sys/fs/cgroup/memory';

/** Why memory cgroups cannot be used here, or null when they can (v1 controller mounted and writable). */
export function cgroupUnavailable(root = CGROUP_V1_MEMORY): string | null {
  if (!existsSync(join(root, 'cgroup.procs'))) return `no cgroup v1 memory controller at ${root}`;
  const probe = join(root, `moesaic-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return null;
  } catch (e) {
    return `cannot create a cgroup under ${root} (${(e as Error).message.split('\n')[0]}; run as root)`;
  }
}

/**
 * A memory cgroup (v1) with a hard limit, for one measured child that moves itself in. Page cache the
 * child faults in is charged to it, so a memory-mapped model pages within the limit as it would on a
 * machine with that much memory. Removed (it must be empty: the child has exited) by `remove`.
 */
export class MemoryCgroup {
  readonly path: string;

  constructor(name: string, limitBytes: number, root = CGROUP_V1_MEMORY) {
    this.path = join(root, name);
    try {
      mkdirSync(this.path);
      writeFileSync(join(this.path, 'memory.limit_in_bytes'), String(Math.floor(limitBytes)));
    } catch (e) {
      this.remove();
      fail('E_IO', `cannot create memory cgroup ${this.path}: ${(e as Error).message}`);
    }
  }

  /** The cgroup's peak charge (RSS + page cache), bytes. */
  peakBytes(): number {
    return Number(readFileSync(join(this.path, 'memory.max_usage_in_bytes'), 'utf8').trim());
  }

  /** Times the limit was hit (reclaim ran). */
  failCount(): number {
    return Number(readFileSync(join(this.path, 'memory.failcnt'), 'utf8').trim());
  }

  /** True if the kernel's OOM killer fired in this cgroup. */
  oomKilled(): boolean {
    try {
      return /oom_kill\s+[1-9]/.test(readFileSync(join(this.path, 'memory.oom_control'), 'utf8'));
    } catch {
      return false;
    }
  }

  remove(): void {
    try {
      if (existsSync(this.path)) rmdirSync(this.path);
    } catch {
      // a process still inside (killed child not yet reaped): the kernel frees it once empty
    }
  }
}
