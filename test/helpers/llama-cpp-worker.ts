// Child process for test/model/llama-crosscheck.test.ts: one GGUF through llama.cpp (node-llama-cpp,
// imported from the moesaic cache where bench generate installs it): the raw logits at every prompt
// position and the greedy continuation. A child, because node-llama-cpp forks to test its binary with the
// parent's execArgv and keeps native threads that the test runner must not inherit.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface Job {
  entry: string;
  model: string;
  prompt: number[];
  genTokens: number;
  vocab: number;
  threads: number;
}
type Item = number | [number, { generateNext: { logits: true } }];
interface Seq {
  controlledEvaluate(items: Item[]): Promise<({ next: { logits?: Map<number, number> } } | undefined)[]>;
  evaluate(tokens: number[], o: { temperature: number; yieldEogToken: boolean }): AsyncGenerator<number, void, void>;
  clearHistory(): Promise<void>;
}
interface Disposable {
  dispose(): Promise<void>;
}
interface Ctx extends Disposable {
  getSequence(): Seq;
}
interface LModel extends Disposable {
  createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number }): Promise<Ctx>;
}
interface Llama extends Disposable {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<LModel>;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const lib = (await import(pathToFileURL(job.entry).href)) as { getLlama(o: object): Promise<Llama> };
const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: 0 });
const model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0 });
const P = job.prompt.length;
const ctx = await model.createContext({ contextSize: P + job.genTokens, batchSize: P, threads: job.threads, sequences: 1 });
const seq = ctx.getSequence();
const items: Item[] = job.prompt.map((t) => [t, { generateNext: { logits: true } }]);
const out = await seq.controlledEvaluate(items);
const logits = job.prompt.map((_, p) => {
  const row: (number | null)[] = new Array<number | null>(job.vocab).fill(null);
  for (const [t, v] of out[p]?.next.logits ?? new Map<number, number>()) row[t] = v;
  return row;
});
await seq.clearHistory();
const ids: number[] = [];
for await (const id of seq.evaluate([...job.prompt], { temperature: 0, yieldEogToken: true })) {
  ids.push(id);
  if (ids.length >= job.genTokens) break;
}
await ctx.dispose();
await model.dispose();
await llama.dispose();
process.stdout.write(`${JSON.stringify({ ids, logits })}\n`);
