import type { ChatTemplate } from './chat-template.js';
import type { ServerMetrics } from './metrics.js';
import type { RoutingRecorder } from './routing-recorder.js';
import type { Scheduler, ServedSequence } from './scheduler.js';

/** Everything the routes share for one server: the model's facts, the scheduler and the instruments. */
export interface ServeContext {
  /** the id clients pass as `model` */
  readonly modelName: string;
  readonly vocabSize: number;
  /** positions a sequence may hold (prompt + generated) */
  readonly maxContext: number;
  /** max_tokens when a request gives none */
  readonly defaultMaxTokens: number;
  /** null without a tokenizer: then only token-id prompts work */
  readonly encode: ((text: string) => number[]) | null;
  /** null without a tokenizer */
  readonly decode: ((ids: readonly number[]) => string) | null;
  readonly chat: ChatTemplate;
  readonly scheduler: Scheduler<ServedSequence>;
  readonly metrics: ServerMetrics;
  readonly recorder: RoutingRecorder;
  /** Bearer key required on /v1 routes, if set */
  readonly apiKey?: string;
  /** expert-cache hit rate source, when a cache is on */
  readonly cacheCounters?: () => { hits: number; misses: number } | null;
  /** one line to the server log */
  log(line: string): void;
}
