import { readFileSync } from 'node:fs';
import { fail } from '../errors.js';
import type { Backend } from './backend.js';
import type { MatmulPrecision } from './matmul-precision.js';
import { bf16ActivationsBackend } from './matmul-precision.js';
import { refBackend } from './ref-backend.js';

export type BackendName = 'cpu' | 'ref';
export const BACKEND_NAMES: readonly BackendName[] = ['cpu', 'ref'];

/**
 * The backend by name. `cpu` is the native addon (SIMD + threads), `ref` the TypeScript reference
 * (slow, for checking). The addon is loaded lazily so `ref` works in tests of the kernels themselves.
 * `precision` is how products with bf16 weights are computed (matmul-precision.ts); the reference
 * rounds the activations too, so `--backend ref` checks the bf16 mode's numbers.
 */
export async function getBackend(name: BackendName, threads?: number, precision: MatmulPrecision = 'exact'): Promise<Backend> {
  if (precision !== 'exact' && precision !== 'bf16') fail('E_BAD_OPTION', `unknown matmul precision '${String(precision)}' (available: exact, bf16)`);
  if (name === 'ref') return precision === 'bf16' ? bf16ActivationsBackend(refBackend) : refBackend;
  if (name !== 'cpu') fail('E_BAD_OPTION', `unknown backend '${String(name)}' (available: ${BACKEND_NAMES.join(', ')})`);
  const native = await import('./cpu-backend.js');
  if (threads !== undefined) native.setThreads(threads);
  return native.cpuBackendFor(precision);
}

/**
 * How weight files are opened: memory-mapped (zero-copy) through the native addon. Only the `ref`
 * backend, which exists to check the kernels, may run without the addon: it then reads files into
 * memory, since a slow reference run on a machine without a compiler is better than none.
 */
export async function fileMapper(backend: BackendName = 'cpu'): Promise<(path: string) => ArrayBuffer> {
  const native = await import('./native.js');
  if (backend === 'ref' && !native.nativeAvailable()) return readWholeFile;
  const cpu = await import('./cpu-backend.js');
  return cpu.mapFile;
}

function readWholeFile(path: string): ArrayBuffer {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    fail('E_IO', `cannot read ${path}: ${(e as Error).message}`);
  }
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
