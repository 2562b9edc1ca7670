// Dependency direction between the source folders (docs/layout.md): the run time never imports the
// synthetic-model generator, the routing code never imports the model loader, and no module imports
// itself through a cycle. Reads the TypeScript sources' import statements (type-only ones included).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { ROOT } from '../reference/harness.js';

/** src-relative module path -> the src-relative modules it imports. */
function importGraph(): Map<string, string[]> {
  const src = join(ROOT, 'src');
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const text = readFileSync(p, 'utf8');
        const deps: string[] = [];
        for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
          deps.push(relative(src, normalize(join(dirname(p), m[1]!))).replace(/\.js$/, '.ts'));
        }
        graph.set(relative(src, p), deps);
      }
    }
  };
  walk(src);
  return graph;
}

const graph = importGraph();

test('the import graph is read (sanity: known edges are found)', () => {
  assert.ok(graph.size > 50, `${graph.size} modules`);
  assert.ok(graph.get('model/checkpoint.ts')?.includes('model/gguf/open.ts'));
  assert.ok(graph.get('model/sampling.ts')?.includes('util/rng.ts'));
});

test('no import cycles', () => {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const cycles: string[] = [];
  const visit = (m: string): void => {
    state.set(m, 'open');
    path.push(m);
    for (const d of graph.get(m) ?? []) {
      if (state.get(d) === 'open') cycles.push([...path.slice(path.indexOf(d)), d].join(' -> '));
      else if (!state.has(d) && graph.has(d)) visit(d);
    }
    path.pop();
    state.set(m, 'done');
  };
  for (const m of graph.keys()) if (!state.has(m)) visit(m);
  assert.deepEqual(cycles, []);
});

test('only the command line imports the generator (src/gen)', () => {
  const offenders = [...graph].flatMap(([m, deps]) =>
    m.startsWith('gen/') || m.startsWith('cli/') ? [] : deps.filter((d) => d.startsWith('gen/')).map((d) => `${m} -> ${d}`),
  );
  assert.deepEqual(offenders, []);
});

test('routing and dispatch (src/moe) do not import the model loader (src/model)', () => {
  const offenders = [...graph].flatMap(([m, deps]) =>
    m.startsWith('moe/') ? deps.filter((d) => d.startsWith('model/')).map((d) => `${m} -> ${d}`) : [],
  );
  assert.deepEqual(offenders, []);
});

test('only the command line imports the off-line analysis (src/analysis); it reads traces, never the engine', () => {
  const offenders = [...graph].flatMap(([m, deps]) =>
    m.startsWith('analysis/') || m.startsWith('cli/') ? [] : deps.filter((d) => d.startsWith('analysis/')).map((d) => `${m} -> ${d}`),
  );
  assert.deepEqual(offenders, []);
  const engine = [...graph].flatMap(([m, deps]) =>
    m.startsWith('analysis/') ? deps.filter((d) => /^(model|moe|tensor)\//.test(d)).map((d) => `${m} -> ${d}`) : [],
  );
  assert.deepEqual(engine, []);
});
