import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ExportType } from '../model/gguf/metadata.js';
import { exportGguf } from '../model/gguf/export.js';

/**
 * The GGUF llama.cpp runs in `bench generate --vs llama.cpp` for a Hugging Face folder: exported
 * once into the cache folder, in the checkpoint's own dtype (so both engines read the same bytes),
 * and reused while it is newer than every file of the folder. Keyed by the folder's absolute path,
 * so two checkpoints with one name never share an export.
 */
export function cachedGguf(
  model: string,
  type: ExportType,
  cacheRoot: string,
  mapFile: (path: string) => ArrayBuffer,
  log: (msg: string) => void,
): string {
  const abs = resolve(model);
  const key = createHash('sha256').update(abs).digest('hex').slice(0, 10);
  const dir = join(cacheRoot, 'gguf');
  const out = join(dir, `${basename(abs)}-${key}.${type}.gguf`);
  if (isNewerThanFolder(out, abs)) {
    log(`using the GGUF export ${out} (newer than ${abs})`);
    return out;
  }
  mkdirSync(dir, { recursive: true });
  log(`exporting ${abs} to ${out} (${type}) for llama.cpp ...`);
  const started = Date.now();
  const r = exportGguf({ model: abs, out, type, mapFile });
  for (const w of r.warnings) log(`  warning: llama.cpp may refuse this file: ${w}`);
  log(`  wrote ${r.tensors} tensors in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

function isNewerThanFolder(file: string, folder: string): boolean {
  let mtime: number;
  try {
    mtime = statSync(file).mtimeMs;
  } catch {
    return false;
  }
  return readdirSync(folder).every((f) => statSync(join(folder, f)).mtimeMs < mtime);
}
