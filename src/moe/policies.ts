import { fail } from '../errors.js';
import type { DispatchPolicy } from './dispatch.js';
import { dynamicDispatch } from './dispatch-dynamic.js';

/** Settings a policy may read; each policy documents which it uses. */
export interface PolicyOptions {
  /** static gating's capacity fraction C: each expert gets ceil(C * S) slots */
  readonly capacityFactor?: number;
}

/** Dispatch policies by name (`--gating`). A new policy is one file plus one line here. */
const POLICIES: Record<string, (opts: PolicyOptions) => DispatchPolicy> = {
  dynamic: () => dynamicDispatch,
};

export const DISPATCH_POLICY_NAMES = Object.keys(POLICIES);

export function dispatchPolicy(name: string, opts: PolicyOptions = {}): DispatchPolicy {
  const make = POLICIES[name];
  if (!make) fail('E_BAD_OPTION', `unknown gating policy '${name}' (available: ${DISPATCH_POLICY_NAMES.join(', ')})`);
  return make(opts);
}
