import type { DispatchPlan } from '../moe/dispatch.js';
import type { Communicator } from './communicator.js';
import type { LayerExperts } from './expert-map.js';
import { holderOf } from './expert-map.js';

/**
 * The routing side of one expert-parallel exchange (Huang et al., "Towards MoE Deployment", arXiv
 * 2303.06182, §4, dynamic gating across devices): where each row of a chunk of this rank's plan goes,
 * and what every peer sends here. Built from the plan, so it works for any dispatch policy: a dropless
 * plan has exactly its rows (dynamic gating); static gating's plan has `capacity` slots per expert,
 * padding included, and those padded buffers are what travels (the paper's baseline).
 *
 * Send order: destination rank, then expert id, then slot order; a peer receives, from each source,
 * its rows grouped by expert ascending. `sendPer[d*E + e]` / `recvPer[s*E + e]` count them.
 */
export interface ExchangeRoute {
  readonly ranks: number;
  readonly experts: number;
  /** [ranks * experts] rows this rank sends to rank d for expert e */
  readonly sendPer: Int32Array;
  /** [ranks * experts] rows rank s sends here for expert e (from the counts all-to-all) */
  readonly recvPer: Int32Array;
  /** [rows] position in the send order of each row of the chunk (row r = plan slot from + r) */
  readonly posOf: Int32Array;
  /** [ranks] rows sent to each rank / received from each rank */
  readonly sendRows: Int32Array;
  readonly recvRows: Int32Array;
}

/**
 * Routes plan slots [from, to): counts rows per (destination, expert), orders them, and exchanges the
 * counts first (a small all-to-all, so every rank can size its receive buffer exactly). Row i of
 * expert e's group goes to copy (i + rank) mod copies: replicas split a hot expert's rows, and ranks
 * with one row each (decode) start their turns on different copies.
 */
export function routeExchange(comm: Communicator, layer: LayerExperts, plan: DispatchPlan, from: number, to: number): ExchangeRoute {
  const N = comm.size;
  const E = plan.numExperts;
  const rows = to - from;
  const cell = new Int32Array(rows); // [rows] destination * E + expert
  const sendPer = new Int32Array(N * E);
  for (let e = 0; e < E; e++) {
    const lo = Math.max(from, plan.offsets[e]!);
    const hi = Math.min(to, plan.offsets[e + 1]!);
    for (let s = lo; s < hi; s++) {
      const c = holderOf(layer, e, s - plan.offsets[e]! + comm.rank) * E + e;
      cell[s - from] = c;
      sendPer[c]!++;
    }
  }
  // counting sort of the rows by (destination, expert); within a cell, slot order is kept
  const next = new Int32Array(N * E);
  for (let i = 1; i < N * E; i++) next[i] = next[i - 1]! + sendPer[i - 1]!;
  const posOf = new Int32Array(rows);
  for (let r = 0; r < rows; r++) posOf[r] = next[cell[r]!]!++;
  const recvPer = new Int32Array(N * E);
  const perPeer = new Int32Array(N).fill(E);
  comm.allToAllV(sendPer, perPeer, recvPer, perPeer);
  return { ranks: N, experts: E, sendPer, recvPer, posOf, sendRows: rowSums(sendPer, N, E), recvRows: rowSums(recvPer, N, E) };
}

function rowSums(m: Int32Array, N: number, E: number): Int32Array {
  const out = new Int32Array(N);
  for (let r = 0; r < N; r++) for (let e = 0; e < E; e++) out[r]! += m[r * E + e]!;
  return out;
}

/**
 * Where each received row sits in the expert-major layout the Experts stage wants (expert e's rows
 * from source 0, then source 1, ...): `localRow[j]` for received row j (source-major order), and
 * `offsets[e]` the start of expert e's rows ([experts + 1]).
 */
export function expertMajorLayout(route: ExchangeRoute): { offsets: Int32Array; localRow: Int32Array } {
  const { ranks: N, experts: E, recvPer } = route;
  const offsets = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) {
    let n = 0;
    for (let s = 0; s < N; s++) n += recvPer[s * E + e]!;
    offsets[e + 1] = offsets[e]! + n;
  }
  const localRow = new Int32Array(offsets[E]!);
  const cursor = offsets.slice(0, E);
  let j = 0;
  for (let s = 0; s < N; s++) {
    for (let e = 0; e < E; e++) {
      for (let i = 0; i < recvPer[s * E + e]!; i++) localRow[j++] = cursor[e]!++;
    }
  }
  return { offsets, localRow };
}

/** dst[map[r]] = src[r] for rows of width H. */
export function permuteRows(dst: Float32Array, src: Float32Array, H: number, map: Int32Array): void {
  for (let r = 0; r < map.length; r++) dst.set(src.subarray(r * H, r * H + H), map[r]! * H);
}

/** dst[r] = src[map[r]] for rows of width H. */
export function gatherRows(dst: Float32Array, src: Float32Array, H: number, map: Int32Array): void {
  for (let r = 0; r < map.length; r++) dst.set(src.subarray(map[r]! * H, map[r]! * H + H), r * H);
}
