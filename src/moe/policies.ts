import { fail } from '../errors.js';
import type { DispatchPolicy } from './dispatch.js';
import { dynamicDispatch } from './dispatch-dynamic.js';
import { fastmoeDispatch } from './dispatch-fastmoe.js';
import { megablocksDispatch } from './dispatch-megablocks.js';
import { staticDispatch } from './dispatch-static.js';
import { tutelDispatch } from './dispatch-tutel.js';

/** Settings a policy may read; each policy documents which it uses. */
export interface PolicyOptions {
  /** static gating's capacity fraction C: each expert gets ceil(C * S) slots (default 1: never drops) */
  readonly capacityFactor?: number;
  /** megablocks' block size in rows (default 16 on CPU) */
  readonly blockSize?: number;
}

/** Dispatch policies by name (`--gating`). A new policy is one file plus one line here. */
const POLICIES: Record<string, (opts: PolicyOptions) => DispatchPolicy> = {
  static: (o) => staticDispatch(o.capacityFactor),
  tutel: () => tutelDispatch,
  fastmoe: () => fastmoeDispatch,
  megablocks: (o) => megablocksDispatch(o.blockSize),
  dynamic: () => dynamicDispatch,
};

export const DISPATCH_POLICY_NAMES = Object.keys(POLICIES);

export function dispatchPolicy(name: string, opts: PolicyOptions = {}): DispatchPolicy {
  const make = POLICIES[name];
  if (!make) fail('E_BAD_OPTION', `unknown gating policy '${name}' (available: ${DISPATCH_POLICY_NAMES.join(', ')})`);
  return make(opts);
}
