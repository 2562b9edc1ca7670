import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MoesaicError } from '../../src/errors.js';
import { balancedPacking, rebalanceExperts, replicateExperts, type EplbOptions } from '../../src/parallel/eplb.js';
import { readWeights } from '../../src/cli/commands/eplb.js';
import { rng } from '../helpers/random.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('the public example of techniques.md §3 gives the published phy2log', () => {
  const r = rebalanceExperts(
    [
      [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
      [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
    ],
    { replicas: 16, groups: 4, nodes: 2, gpus: 8 },
  );
  assert.equal(r.mode, 'hierarchical');
  assert.deepEqual(
    r.layers.map((l) => l.phy2log),
    [
      [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
      [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
    ],
  );
});

test('balancedPacking: greedy into the lightest non-full pack, ties to the lowest index', () => {
  // order 5,4,3,2,1,1 -> p0:5  p1:4  p1:7  p0:7  tie->p0:8 (full)  p1:8
  assert.deepEqual(balancedPacking([5, 4, 3, 2, 1, 1], 2), { pack: [0, 1, 1, 0, 0, 1], rank: [0, 0, 1, 1, 2, 2] });
  // one item per pack: identity (every assignment is equally balanced; the identity moves nothing)
  assert.deepEqual(balancedPacking([1, 9, 5], 3), { pack: [0, 1, 2], rank: [0, 0, 0] });
  assert.throws(() => balancedPacking([1, 2, 3], 2), (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_OPTION');
});

test('replicateExperts: each extra slot to the largest load per replica', () => {
  // per replica [10,4,6] -> 0 (5) ; [5,4,6] -> 2 (3) ; [5,4,3] -> 0
  assert.deepEqual(replicateExperts([10, 4, 6], 6), { phy2log: [0, 1, 2, 0, 2, 0], rank: [0, 0, 0, 1, 1, 2], logcnt: [3, 1, 2] });
  // tie between experts 0 and 1 at 4 per replica goes to the lowest id
  assert.deepEqual(replicateExperts([8, 4], 4).phy2log, [0, 1, 0, 0]);
});

test('global mode on a hand-worked layer', () => {
  // groups 1 over 2 nodes does not divide: global. Replicate [8,4,2,2] into 6: 0, then tie 0/1 at 4 -> 0.
  // Replicas (slot: load) 0:8/3 1:4 2:2 3:2 4:8/3 5:8/3 packed 3 per GPU: 1->g0, 0->g1, 4->g1, 5->g0, 2->g1, 3->g0
  const r = rebalanceExperts([[8, 4, 2, 2]], { replicas: 6, groups: 1, nodes: 2, gpus: 2 });
  assert.equal(r.mode, 'global');
  const l = r.layers[0]!;
  assert.deepEqual(l.phy2log, [1, 0, 3, 0, 0, 2]);
  assert.deepEqual(l.logcnt, [3, 1, 1, 1]);
  assert.deepEqual(l.log2phy, [[3, 4, 1], [0, -1, -1], [5, -1, -1], [2, -1, -1]]);
  // before: GPU 0 holds experts 0,1 (12), GPU 1 holds 2,3 (4); after: 4 + 8/3 + 2 and 8/3 + 8/3 + 2
  assert.deepEqual(l.before, { max: 12, mean: 8, imbalance: 1.5 });
  close(l.after.max, 26 / 3);
  close(l.after.mean, 8);
  close(l.after.imbalance, 26 / 24);
});

test('hierarchical mode on a hand-worked layer keeps each group on one node', () => {
  // groups are single experts; loads [1,2,8,5] packed 2 per node: e2->n0, e3->n1, e1->n1, e0->n0.
  // node 0 = experts [2,0] (8,1), 3 slots: extra to 2 -> replicas 4,1,4 -> GPU 0 slots [2,2,0]
  // node 1 = experts [3,1] (5,2), 3 slots: extra to 3 -> replicas 2.5,2,2.5 -> GPU 1 slots [3,3,1]
  const r = rebalanceExperts([[1, 2, 8, 5]], { replicas: 6, groups: 4, nodes: 2, gpus: 2 });
  assert.equal(r.mode, 'hierarchical');
  const l = r.layers[0]!;
  assert.deepEqual(l.phy2log, [2, 2, 0, 3, 3, 1]);
  assert.deepEqual(l.logcnt, [1, 1, 2, 2]);
  assert.deepEqual(l.log2phy, [[2, -1, -1], [5, -1, -1], [0, 1, -1], [3, 4, -1]]);
  assert.deepEqual(l.before, { max: 13, mean: 8, imbalance: 13 / 8 });
  assert.deepEqual(l.after, { max: 9, mean: 8, imbalance: 9 / 8 });
});


test('invariants over random loads and option grids', () => {
  const r = rng(42);
  const cases: Array<[number, EplbOptions]> = [
    [12, { replicas: 16, groups: 4, nodes: 2, gpus: 8 }],
    [16, { replicas: 32, groups: 8, nodes: 4, gpus: 8 }],
    [16, { replicas: 24, groups: 4, nodes: 3, gpus: 6 }], // 4 % 3 != 0: global
    [8, { replicas: 8, groups: 2, nodes: 2, gpus: 4 }], // no redundant slots
    [10, { replicas: 30, groups: 5, nodes: 1, gpus: 3 }],
  ];
  for (const [E, o] of cases) {
    const weights = Array.from({ length: 3 }, () => Array.from({ length: E }, () => Math.floor(r() * 200)));
    const res = rebalanceExperts(weights, o);
    assert.equal(res.mode, o.groups % o.nodes === 0 ? 'hierarchical' : 'global');
    res.layers.forEach((l, li) => {
      const w = weights[li]!;
      assert.equal(l.phy2log.length, o.replicas);
      assert.ok(l.logcnt.every((c) => c >= 1), 'every logical expert has a replica');
      assert.equal(l.logcnt.reduce((a, b) => a + b, 0), o.replicas);
      for (let e = 0; e < E; e++) {
        const slots = l.phy2log.flatMap((m, s) => (m === e ? [s] : []));
        assert.equal(slots.length, l.logcnt[e]);
        const listed = l.log2phy[e]!;
        assert.equal(listed.length, o.replicas - E + 1);
        assert.deepEqual([...listed.slice(0, l.logcnt[e])].sort((a, b) => a - b), slots);
        assert.ok(listed.slice(l.logcnt[e]).every((s) => s === -1));
      }
      // the expected load is only redistributed, never created or lost
      const perGpu = o.replicas / o.gpus;
      const gpuLoad = new Array<number>(o.gpus).fill(0);
      l.phy2log.forEach((m, s) => (gpuLoad[Math.floor(s / perGpu)]! += w[m]! / l.logcnt[m]!));
      const total = w.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(gpuLoad.reduce((a, b) => a + b, 0) - total) < 1e-9);
      assert.ok(Math.abs(l.after.max - Math.max(...gpuLoad)) < 1e-9);
      close(l.after.mean, total / o.gpus);
      if (res.mode === 'hierarchical') {
        // all replicas of a group sit on one node
        const groupSize = E / o.groups;
        const perNode = o.replicas / o.nodes;
        const nodeOfGroup = new Map<number, number>();
        l.phy2log.forEach((m, s) => {
          const g = Math.floor(m / groupSize);
          const n = Math.floor(s / perNode);
          assert.equal(nodeOfGroup.get(g) ?? n, n, `group ${g} split across nodes`);
          nodeOfGroup.set(g, n);
        });
      }
    });
  }
});

test('invalid options and loads fail with E_BAD_OPTION / E_BAD_INPUT naming the option', () => {
  const w = [[1, 2, 3, 4]];
  const bad = (o: EplbOptions, code: string, re: RegExp) =>
    assert.throws(() => rebalanceExperts(w, o), (e: unknown) => e instanceof MoesaicError && e.code === code && re.test(e.message));
  bad({ replicas: 3, groups: 1, nodes: 1, gpus: 1 }, 'E_BAD_OPTION', /--replicas 3 is fewer than the 4 experts/);
  bad({ replicas: 6, groups: 1, nodes: 1, gpus: 4 }, 'E_BAD_OPTION', /--replicas 6 must be a multiple of --gpus 4/);
  bad({ replicas: 8, groups: 3, nodes: 1, gpus: 4 }, 'E_BAD_OPTION', /--groups 3 must divide the 4 experts/);
  bad({ replicas: 8, groups: 2, nodes: 3, gpus: 4 }, 'E_BAD_OPTION', /--gpus 4 must be a multiple of --nodes 3/);
  bad({ replicas: 8, groups: 0, nodes: 1, gpus: 4 }, 'E_BAD_OPTION', /--groups must be a positive integer/);
  assert.throws(
    () => rebalanceExperts([[1, -2, 3, 4]], { replicas: 4, groups: 1, nodes: 1, gpus: 1 }),
    (e: unknown) => e instanceof MoesaicError && e.code === 'E_BAD_INPUT' && /layer 0, expert 1/.test(e.message),
  );
});

test('readWeights accepts both file shapes and names the file on errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moesaic-eplb-'));
  try {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(a, '[[1, 2], [3, 4]]');
    writeFileSync(b, '{"weights": [[1, 2], [3, 4]]}');
    assert.deepEqual(await readWeights(a), [[1, 2], [3, 4]]);
    assert.deepEqual(await readWeights(b), [[1, 2], [3, 4]]);
    writeFileSync(b, '{"model": "m", "layers": [{"layer": 1, "popularity": [0.25, 0.75]}, {"layer": 3, "popularity": [1, 0]}]}');
    assert.deepEqual(await readWeights(b), [[0.25, 0.75], [1, 0]]);
    const cases: Array<[string, RegExp]> = [
      ['{"weights": 3}', /non-empty array of layers/],
      ['[[1, 2], [3]]', /layer 1 has 1 expert loads, layer 0 has 2/],
      ['[[1, "x"]]', /layer 0, expert 1: load must be a number/],
      ['[[1, 2]', /not valid JSON/],
    ];
    for (const [text, re] of cases) {
      writeFileSync(a, text);
      await assert.rejects(readWeights(a), (e: unknown) => e instanceof MoesaicError && e.message.includes(a) && re.test(e.message));
    }
    await assert.rejects(readWeights(join(dir, 'missing.json')), (e: unknown) => e instanceof MoesaicError && e.code === 'E_IO');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
