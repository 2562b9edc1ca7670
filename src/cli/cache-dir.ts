import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where generated demo/bench models are cached: $MOESAIC_CACHE, else $XDG_CACHE_HOME/moesaic, else ~/.cache/moesaic. */
export function cacheDir(): string {
  if (process.env.MOESAIC_CACHE) return process.env.MOESAIC_CACHE;
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'moesaic');
}
