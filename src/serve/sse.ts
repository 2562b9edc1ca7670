import type { ServerResponse } from 'node:http';

/**
 * Server-sent events written by hand on the raw response (OpenAI's streaming format): one
 * `data: <json>` event per chunk, then `data: [DONE]`. Writes after the client went away are dropped.
 */
export class SseStream {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  send(data: unknown): void {
    if (this.open) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream with `data: [DONE]`. */
  done(): void {
    if (this.open) this.res.end('data: [DONE]\n\n');
  }
}
