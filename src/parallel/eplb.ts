import { fail } from '../errors.js';

/**
 * DeepSeek's Expert-Parallelism Load Balancer (EPLB), as specified in techniques.md §3: give the heaviest
 * experts redundant replicas and pack the replicas onto GPUs so that every GPU carries about the same
 * expected load. Pure functions over plain arrays, one layer at a time (layers are independent).
 *
 * - `replicateExperts`: each extra physical slot goes to the logical expert with the largest load per
 *   replica (ties to the lowest expert id).
 * - `balancedPacking`: items by weight descending (a stable sort: equal weights keep id order), each into
 *   the lightest pack that still has room (ties to the lowest pack index); every pack ends with the same
 *   count. With one item per pack the packing is the identity, as in DeepSeek's reference: every
 *   assignment is then equally balanced, and the identity moves nothing.
 * - hierarchical (when groups % nodes == 0): pack expert groups onto nodes (so group-limited routing
 *   keeps its traffic inside a node), replicate within each node, then pack each node's replicas onto its
 *   GPUs with load = expert load / replica count. Otherwise global: the same with one group and one node.
 *
 * Loads are doubles (the reference uses float32); ties are broken by index as stated above.
 */

export interface EplbOptions {
  /** physical expert slots in total (all GPUs); a multiple of `gpus`, at least the number of experts */
  replicas: number;
  /** expert groups (group-limited routing); must divide the number of experts */
  groups: number;
  /** server nodes; must divide `gpus` */
  nodes: number;
  /** GPUs in total */
  gpus: number;
}

/** One layer's plan. Physical slot s lives on GPU floor(s / (replicas / gpus)). */
export interface EplbLayerPlan {
  /** [replicas]: the logical expert each physical slot holds */
  phy2log: number[];
  /** [experts][replicas - experts + 1]: the physical slots of each logical expert by replica rank, -1 padded */
  log2phy: number[][];
  /** [experts]: replica count of each logical expert (>= 1, sums to replicas) */
  logcnt: number[];
}

/** Per-GPU expected load of one layer: max, mean and their ratio (1 = perfectly balanced). */
export interface GpuLoadStats {
  max: number;
  mean: number;
  /** max / mean; 1 when the layer has no load at all */
  imbalance: number;
}

export interface EplbLayerResult extends EplbLayerPlan {
  /** experts spread contiguously over the GPUs (expert m on GPU floor(m * gpus / experts)), no replicas */
  before: GpuLoadStats;
  /** the EPLB plan, each replica carrying expert load / replica count */
  after: GpuLoadStats;
}

export interface EplbResult {
  mode: 'hierarchical' | 'global';
  layers: EplbLayerResult[];
  /** mean over layers of before.imbalance and after.imbalance */
  mean_imbalance_before: number;
  mean_imbalance_after: number;
}

/** Indices sorted by weight descending; stable, so equal weights keep ascending index order. */
function byWeightDesc(weights: readonly number[]): number[] {
  return weights.map((_, i) => i).sort((a, b) => weights[b]! - weights[a]! || a - b);
}

/** Packs weights.length items into numPacks packs of equal count; returns each item's pack and rank in it. */
export function balancedPacking(weights: readonly number[], numPacks: number): { pack: number[]; rank: number[] } {
  const n = weights.length;
  if (numPacks < 1 || n % numPacks !== 0) {
    fail('E_BAD_OPTION', `balanced packing: ${n} items do not split evenly into ${numPacks} packs`);
  }
  const perPack = n / numPacks;
  if (perPack === 1) return { pack: weights.map((_, i) => i), rank: weights.map(() => 0) };
  const pack = new Array<number>(n).fill(-1);
  const rank = new Array<number>(n).fill(-1);
  const load = new Array<number>(numPacks).fill(0);
  const count = new Array<number>(numPacks).fill(0);
  for (const item of byWeightDesc(weights)) {
    let best = -1;
    for (let p = 0; p < numPacks; p++) {
      if (count[p]! < perPack && (best < 0 || load[p]! < load[best]!)) best = p;
    }
    pack[item] = best;
    rank[item] = count[best]!;
    load[best]! += weights[item]!;
    count[best]! += 1;
  }
  return { pack, rank };
}

/**
 * Replicates weights.length logical experts into numPhysical slots: slots 0..E-1 hold experts 0..E-1,
 * each further slot the expert with the largest load per replica at that moment.
 * Returns per slot the logical expert and its replica rank, and per expert its replica count.
 */
export function replicateExperts(weights: readonly number[], numPhysical: number): { phy2log: number[]; rank: number[]; logcnt: number[] } {
  const e = weights.length;
  if (numPhysical < e) fail('E_BAD_OPTION', `replication: ${numPhysical} slots cannot hold ${e} experts`);
  const phy2log = weights.map((_, i) => i);
  const rank = weights.map(() => 0);
  const logcnt = weights.map(() => 1);
  for (let s = e; s < numPhysical; s++) {
    let best = 0;
    for (let m = 1; m < e; m++) {
      if (weights[m]! / logcnt[m]! > weights[best]! / logcnt[best]!) best = m;
    }
    phy2log.push(best);
    rank.push(logcnt[best]!);
    logcnt[best]! += 1;
  }
  return { phy2log, rank, logcnt };
}

function inverse(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((v, i) => (inv[v] = i));
  return inv;
}

/** One layer, hierarchical over `groups` groups and `nodes` nodes (global = groups 1, nodes 1). */
function rebalanceLayer(w: readonly number[], replicas: number, groups: number, nodes: number, gpus: number): EplbLayerPlan {
  const e = w.length;
  const groupSize = e / groups;
  const groupsPerNode = groups / nodes;
  const logPerNode = e / nodes;
  const phyPerNode = replicas / nodes;
  const phyPerGpu = replicas / gpus;
  const gpusPerNode = gpus / nodes;

  // 1. groups -> nodes; "mlog" numbers experts node-major: node n owns mlog ids [n*logPerNode, (n+1)*logPerNode)
  const groupLoad = Array.from({ length: groups }, (_, g) => w.slice(g * groupSize, (g + 1) * groupSize).reduce((a, b) => a + b, 0));
  const gp = balancedPacking(groupLoad, nodes);
  const log2mlog = w.map((_, m) => {
    const g = Math.floor(m / groupSize);
    return (gp.pack[g]! * groupsPerNode + gp.rank[g]!) * groupSize + (m % groupSize);
  });
  const mlog2log = inverse(log2mlog);

  const phy2log = new Array<number>(replicas);
  const phyRank = new Array<number>(replicas);
  const logcnt = new Array<number>(e);
  for (let n = 0; n < nodes; n++) {
    // 2. replicate within the node
    const local = Array.from({ length: logPerNode }, (_, i) => mlog2log[n * logPerNode + i]!); // local id -> logical
    const lw = local.map((m) => w[m]!);
    const rep = replicateExperts(lw, phyPerNode);
    local.forEach((m, i) => (logcnt[m] = rep.logcnt[i]!));
    // 3. the node's replicas -> its GPUs, each replica carrying its expert's load / replica count
    const perReplica = rep.phy2log.map((i) => lw[i]! / rep.logcnt[i]!);
    const pk = balancedPacking(perReplica, gpusPerNode);
    const phy2slot = pk.pack.map((p, j) => p * phyPerGpu + pk.rank[j]!);
    const slot2phy = inverse(phy2slot);
    for (let s = 0; s < phyPerNode; s++) {
      const j = slot2phy[s]!;
      phy2log[n * phyPerNode + s] = local[rep.phy2log[j]!]!;
      phyRank[n * phyPerNode + s] = rep.rank[j]!;
    }
  }

  const maxCnt = replicas - e + 1;
  const log2phy = Array.from({ length: e }, () => new Array<number>(maxCnt).fill(-1));
  phy2log.forEach((m, s) => (log2phy[m]![phyRank[s]!] = s));
  return { phy2log, log2phy, logcnt };
}

/** Checks the options against the layer width and each other; every message names the option at fault. */
export function validateEplb(numExperts: number, o: EplbOptions): void {
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isSafeInteger(v) || v < 1) fail('E_BAD_OPTION', `--${k} must be a positive integer, got ${v}`);
  }
  if (o.replicas < numExperts) {
    fail('E_BAD_OPTION', `--replicas ${o.replicas} is fewer than the ${numExperts} experts: every expert needs a slot`);
  }
  if (o.replicas % o.gpus !== 0) fail('E_BAD_OPTION', `--replicas ${o.replicas} must be a multiple of --gpus ${o.gpus}`);
  if (numExperts % o.groups !== 0) fail('E_BAD_OPTION', `--groups ${o.groups} must divide the ${numExperts} experts`);
  if (o.gpus % o.nodes !== 0) fail('E_BAD_OPTION', `--gpus ${o.gpus} must be a multiple of --nodes ${o.nodes}`);
}

function stats(gpuLoad: readonly number[]): GpuLoadStats {
  const max = Math.max(...gpuLoad);
  const mean = gpuLoad.reduce((a, b) => a + b, 0) / gpuLoad.length;
  return { max, mean, imbalance: mean > 0 ? max / mean : 1 };
}

/** Expected per-GPU load with expert m on GPU floor(m * gpus / experts), the placement without EPLB. */
export function contiguousGpuLoad(w: readonly number[], gpus: number): number[] {
  const load = new Array<number>(gpus).fill(0);
  w.forEach((x, m) => (load[Math.floor((m * gpus) / w.length)]! += x));
  return load;
}

/** Expected per-GPU load of a plan: each replica carries its expert's load / replica count. */
export function planGpuLoad(w: readonly number[], plan: EplbLayerPlan, gpus: number): number[] {
  const perGpu = plan.phy2log.length / gpus;
  const load = new Array<number>(gpus).fill(0);
  plan.phy2log.forEach((m, s) => (load[Math.floor(s / perGpu)]! += w[m]! / plan.logcnt[m]!));
  return load;
}

/**
 * Runs EPLB on every layer of `weights` ([layers][experts] expected loads, e.g. token counts).
 * Hierarchical when groups % nodes == 0, otherwise global.
 */
export function rebalanceExperts(weights: readonly (readonly number[])[], o: EplbOptions): EplbResult {
  if (weights.length === 0) fail('E_BAD_INPUT', 'EPLB needs at least one layer of expert loads');
  const e = weights[0]!.length;
  weights.forEach((row, l) => {
    if (row.length !== e) fail('E_BAD_INPUT', `layer ${l} has ${row.length} expert loads, layer 0 has ${e}`);
    row.forEach((x, m) => {
      if (!Number.isFinite(x) || x < 0) fail('E_BAD_INPUT', `layer ${l}, expert ${m}: load must be a finite number >= 0, got ${x}`);
    });
  });
  validateEplb(e, o);
  const hierarchical = o.groups % o.nodes === 0;
  const layers = weights.map((w) => {
    const plan = hierarchical ? rebalanceLayer(w, o.replicas, o.groups, o.nodes, o.gpus) : rebalanceLayer(w, o.replicas, 1, 1, o.gpus);
    return { ...plan, before: stats(contiguousGpuLoad(w, o.gpus)), after: stats(planGpuLoad(w, plan, o.gpus)) };
  });
  const meanOf = (f: (l: EplbLayerResult) => number) => layers.reduce((a, l) => a + f(l), 0) / layers.length;
  return {
    mode: hierarchical ? 'hierarchical' : 'global',
    layers,
    mean_imbalance_before: meanOf((l) => l.before.imbalance),
    mean_imbalance_after: meanOf((l) => l.after.imbalance),
  };
}
