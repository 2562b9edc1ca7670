import { readFileSync } from 'node:fs';

/**
 * Bytes this process can still allocate without pushing the machine into reclaim or its memory cgroup
 * into the OOM killer: the smaller of the kernel's MemAvailable and, when the process sits in a memory
 * cgroup with a limit (v1 or v2), that limit minus the cgroup's usage. Undefined where neither can be
 * read (not Linux).
 */
export function availableMemoryBytes(): number | undefined {
  const limits: number[] = [];
  const meminfo = readText('/proc/meminfo');
  const m = meminfo && /^MemAvailable:\s+(\d+) kB/m.exec(meminfo);
  if (m) limits.push(Number(m[1]) * 1024);
  for (const line of (readText('/proc/self/cgroup') ?? '').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (controllers === 'memory') {
      const dir = `/sys/fs/cgroup/memory${path}`;
      push(limits, readNumber(`${dir}/memory.limit_in_bytes`), readNumber(`${dir}/memory.usage_in_bytes`));
    } else if (controllers === '') {
      const dir = `/sys/fs/cgroup${path}`;
      push(limits, readNumber(`${dir}/memory.max`), readNumber(`${dir}/memory.current`));
    }
  }
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

function push(limits: number[], limit: number | undefined, usage: number | undefined): void {
  // an unlimited cgroup reports 'max' (v2) or a value near 2^63 (v1)
  if (limit !== undefined && usage !== undefined && limit < 2 ** 60) limits.push(Math.max(0, limit - usage));
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(path: string): number | undefined {
  const t = readText(path)?.trim();
  return t !== undefined && /^\d+$/.test(t) ? Number(t) : undefined;
}
