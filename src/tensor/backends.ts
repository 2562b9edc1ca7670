import { fail } from '../errors.js';
import type { Backend } from './backend.js';
import { refBackend } from './ref-backend.js';

export type BackendName = 'cpu' | 'ref';
export const BACKEND_NAMES: readonly BackendName[] = ['cpu', 'ref'];

/**
 * The backend by name. `cpu` is the native addon (SIMD + threads), `ref` the TypeScript reference
 * (slow, for checking). The addon is loaded lazily so `ref` works in tests of the kernels themselves.
 */
export async function getBackend(name: BackendName, threads?: number): Promise<Backend> {
  if (name === 'ref') return refBackend;
  if (name !== 'cpu') fail('E_BAD_OPTION', `unknown backend '${String(name)}' (available: ${BACKEND_NAMES.join(', ')})`);
  const native = await import('./cpu-backend.js');
  if (threads !== undefined) native.setThreads(threads);
  return native.cpuBackend;
}

/** Memory-map a weight file (zero-copy) through the native addon. */
export async function fileMapper(): Promise<(path: string) => ArrayBuffer> {
  const native = await import('./cpu-backend.js');
  return native.mapFile;
}
