import { readTrace, type TraceHeader } from './format.js';

/**
 * One MoE layer's routing reduced to what the simulators need: for each step with at least one token,
 * the active experts (ascending id) and how many assignments each got. Memory is proportional to the
 * number of (step, active expert) pairs, not to tokens (a simulation of 1,000,000 assignments per
 * layer in seconds). Arrays are CSR-style: step i's experts are experts[offsets[i] .. offsets[i+1]).
 */
export interface LayerActivity {
  layer: number;
  steps: Int32Array; // [S] step numbers, ascending
  tokens: Int32Array; // [S] tokens T routed at that step
  offsets: Int32Array; // [S + 1]
  experts: Int32Array; // [pairs] active expert ids, ascending within a step
  counts: Int32Array; // [pairs] assignments (tokens) per active expert
}

export interface TraceActivity {
  header: TraceHeader;
  layers: LayerActivity[]; // one per header.moe_layers entry, same order
}

/** A growable Int32Array (amortised doubling), so the reduction never holds JS number arrays. */
class IntList {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  toArray(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/** Builds a LayerActivity from per-step active sets (tests, gen-trace checks); counts default to 1. */
export function activityFromSteps(layer: number, steps: number[][], tokens?: number[], counts?: number[][]): LayerActivity {
  const offsets = [0];
  const ex: number[] = [];
  const cn: number[] = [];
  steps.forEach((set, i) => {
    const order = set.map((e, j) => [e, counts?.[i]?.[j] ?? 1]).sort((a, b) => a[0] - b[0]);
    for (const [e, c] of order) {
      ex.push(e);
      cn.push(c);
    }
    offsets.push(ex.length);
  });
  return {
    layer,
    steps: Int32Array.from(steps.map((_, i) => i)),
    tokens: Int32Array.from(steps.map((s, i) => tokens?.[i] ?? s.length)),
    offsets: Int32Array.from(offsets),
    experts: Int32Array.from(ex),
    counts: Int32Array.from(cn),
  };
}

/** Streams a trace (readTrace) and reduces each record to its active experts as soon as it is read. */
export async function readActivity(path: string): Promise<TraceActivity> {
  const { header, records } = await readTrace(path);
  const E = header.num_experts;
  const index = new Map(header.moe_layers.map((l, i) => [l, i]));
  const lists = header.moe_layers.map(() => ({ steps: new IntList(), tokens: new IntList(), offsets: new IntList(), experts: new IntList(), counts: new IntList() }));
  for (const l of lists) l.offsets.push(0);
  const count = new Int32Array(E); // [E] assignments per expert in the current record
  for await (const rec of records) {
    const T = rec.experts.length;
    if (T === 0) continue;
    for (let t = 0; t < T; t++) {
      const ids = rec.experts[t];
      for (let j = 0; j < ids.length; j++) count[ids[j]]++;
    }
    const out = lists[index.get(rec.layer)!];
    out.steps.push(rec.step);
    out.tokens.push(T);
    for (let e = 0; e < E; e++) {
      if (count[e] !== 0) {
        out.experts.push(e);
        out.counts.push(count[e]);
        count[e] = 0;
      }
    }
    out.offsets.push(out.experts.length);
  }
  return {
    header,
    layers: lists.map((l, i) => ({
      layer: header.moe_layers[i],
      steps: l.steps.toArray(),
      tokens: l.tokens.toArray(),
      offsets: l.offsets.toArray(),
      experts: l.experts.toArray(),
      counts: l.counts.toArray(),
    })),
  };
}
