/** A moesaic server on a free port of 127.0.0.1 over a synthetic checkpoint, for the HTTP tests. */
import { loadModel } from '../../src/model/model.js';
import type { LoadOptions } from '../../src/model/model.js';
import type { Server, ServeOptions } from '../../src/serve/server.js';
import { createServer } from '../../src/serve/server.js';

export interface Running {
  readonly url: string;
  readonly server: Server;
  readonly log: string[];
  close(): Promise<void>;
}

export const DEFAULT_LIMITS = { maxBatch: 32, maxStepTokens: 256, kvMemory: 1 << 30, maxQueue: 64 };

export async function startServer(dir: string, opts: Partial<ServeOptions> = {}, load: LoadOptions = {}): Promise<Running> {
  const model = await loadModel(dir, { threads: 1, ...load });
  const log: string[] = [];
  const server = createServer(model, { ...DEFAULT_LIMITS, modelName: 'tiny', log: (l) => log.push(l), ...opts });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  return { url, server, log, close: () => server.close() };
}

/** Resolves once the scheduler holds no sequence and no KV memory (polling between event-loop turns). */
export async function idle(r: Running, timeoutMs = 20_000): Promise<void> {
  const s = r.server.ctx.scheduler;
  const end = Date.now() + timeoutMs;
  while (s.runningCount > 0 || s.queueLength > 0 || s.kvBytes > 0) {
    if (Date.now() > end) throw new Error(`not idle after ${timeoutMs} ms: running ${s.runningCount}, queue ${s.queueLength}, kv ${s.kvBytes}`);
    await new Promise((res) => setTimeout(res, 5));
  }
}
