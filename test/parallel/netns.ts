/**
 * Two "hosts" on one machine for the multi-host test: two network namespaces joined by a veth pair,
 * addressed inside a private 10.x subnet, and an mpirun launch agent (in place of ssh) that runs the
 * remote daemon with `ip netns exec` in the namespace owning the host's address. Names carry the
 * process id, so concurrent runs do not collide; `remove` deletes both namespaces (and with them the
 * veth pair).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TwoHosts {
  readonly namespaces: readonly [string, string];
  readonly addresses: readonly [string, string];
  readonly subnet: string;
  /** the launch agent script for --mca plm_rsh_agent */
  readonly agent: string;
  remove(): void;
}

function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: !r.error && r.status === 0, err: r.error ? r.error.message : r.stderr.trim() };
}

/** Makes the two hosts, or returns why it cannot (not root, no iproute2, no CAP_NET_ADMIN). */
export function makeTwoHosts(dir: string): TwoHosts | string {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const id = process.pid % 100_000;
  const ns: [string, string] = [`moesaic${id}a`, `moesaic${id}b`];
  const veth = [`mse${id}a`, `mse${id}b`];
  const net = `10.231.${id % 250}`;
  const addresses: [string, string] = [`${net}.1`, `${net}.2`];
  const remove = (): void => {
    for (const n of ns) ip(['netns', 'del', n]);
  };
  const steps = [
    ['netns', 'add', ns[0]],
    ['netns', 'add', ns[1]],
    ['link', 'add', veth[0]!, 'type', 'veth', 'peer', 'name', veth[1]!],
    ['link', 'set', veth[0]!, 'netns', ns[0]],
    ['link', 'set', veth[1]!, 'netns', ns[1]],
    ['-n', ns[0], 'addr', 'add', `${addresses[0]}/24`, 'dev', veth[0]!],
    ['-n', ns[1], 'addr', 'add', `${addresses[1]}/24`, 'dev', veth[1]!],
    ['-n', ns[0], 'link', 'set', veth[0]!, 'up'],
    ['-n', ns[1], 'link', 'set', veth[1]!, 'up'],
    ['-n', ns[0], 'link', 'set', 'lo', 'up'],
    ['-n', ns[1], 'link', 'set', 'lo', 'up'],
  ];
  for (const s of steps) {
    const r = ip(s);
    if (!r.ok) {
      remove();
      ip(['link', 'del', veth[0]!]);
      return `cannot make network namespaces (ip ${s.join(' ')}: ${r.err})`;
    }
  }
  const agent = join(dir, 'netns-agent.sh');
  writeFileSync(
    agent,
    [
      '#!/bin/sh',
      '# mpirun launch agent (instead of ssh): "agent HOST COMMAND..." runs COMMAND in the namespace of HOST',
      'host=$1; shift',
      'case "$host" in',
      `  ${addresses[0]}) ns=${ns[0]} ;;`,
      `  ${addresses[1]}) ns=${ns[1]} ;;`,
      '  *) echo "netns agent: unknown host $host" >&2; exit 1 ;;',
      'esac',
      'exec ip netns exec "$ns" sh -c "$*"',
      '',
    ].join('\n'),
  );
  chmodSync(agent, 0o755);
  return { namespaces: ns, addresses, subnet: `${net}.0/24`, agent, remove };
}
