import { fail } from '../errors.js';
import type { SwiGluWeights } from '../moe/swiglu.js';
import type { Weight } from '../tensor/weight.js';
import type { MappedFiles } from './mapped-files.js';

/** O_DIRECT needs file offsets, lengths and buffer addresses aligned to the device's logical block
 *  size; 4096 is a multiple of every common one. Buffered reads use the same layout. */
export const IO_ALIGN = 4096;

const ROLES = ['gate', 'up', 'down'] as const;
type Role = (typeof ROLES)[number];

/** One expert tensor on disk. */
interface Part {
  readonly role: Role;
  readonly weight: Weight;
  readonly path: string;
  readonly offset: number; // file byte offset
  readonly bytes: number;
}

/** Where one of an expert's tensors lies inside its slot once read. */
export interface PartView {
  readonly role: Role;
  /** the mapped tensor: name, dtype, shape and array type of the view to build */
  readonly weight: Weight;
  /** byte offset of the tensor inside the slot */
  readonly slotOffset: number;
}

type ViewCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => Weight['data'];

/** How one expert is read into a slot: aligned spans of its file(s) and where each tensor lands. */
export interface ExpertReadPlan {
  /** the files the spans read, in the order `spans` indexes them */
  readonly paths: readonly string[];
  /** [pathIndex, fileOffset, readBytes, slotOffset, needBytes]* (the native load's ranges, files as path indices) */
  readonly spans: Float64Array;
  readonly views: readonly PartView[];
  /** bytes the slot must hold */
  readonly slotBytes: number;
  /** bytes of the expert's tensors (what the cache budgets per expert) */
  readonly tensorBytes: number;
}

function partsOf(w: SwiGluWeights, files: MappedFiles, what: string): Part[] {
  return ROLES.map((role) => {
    const weight = w[role];
    const data = weight.data;
    const path = files.pathOf(data.buffer);
    if (path === undefined) {
      fail(
        'E_BAD_OPTION',
        `--expert-cache: ${what} tensor '${weight.name}' is not stored as plain ${weight.dtype} bytes in the file (quantized in memory by --quantize, or realigned at load), so it cannot be read into a cache slot; export the quantized model with export-gguf --type and load that file`,
      );
    }
    return { role, weight, path, offset: data.byteOffset, bytes: data.byteLength };
  });
}

/**
 * The read plan of one expert: its three tensors grouped into aligned file spans (tensors stored next
 * to each other, as writers usually place an expert's gate/up/down, become one read), each span at an
 * aligned offset of the slot. safetensors stores one tensor per expert; GGUF stacks a layer's experts in
 * one tensor, and the loader's per-expert views already carry the expert's byte range.
 */
export function expertReadPlan(w: SwiGluWeights, files: MappedFiles, what: string): ExpertReadPlan {
  const parts = partsOf(w, files, what).sort((a, b) => (a.path === b.path ? a.offset - b.offset : a.path < b.path ? -1 : 1));
  const paths: string[] = [];
  const spans: number[] = [];
  const views: PartView[] = [];
  let cursor = 0;
  let spanStart = -1; // aligned file offset of the open span
  let spanEnd = -1; // aligned end
  let spanNeed = 0; // real end
  let spanPath = '';
  let spanSlot = 0;
  const close = () => {
    if (spanStart < 0) return;
    spans.push(paths.indexOf(spanPath), spanStart, spanEnd - spanStart, spanSlot, spanNeed - spanStart);
    cursor = spanSlot + (spanEnd - spanStart);
  };
  for (const p of parts) {
    const a0 = Math.floor(p.offset / IO_ALIGN) * IO_ALIGN;
    const a1 = Math.ceil((p.offset + p.bytes) / IO_ALIGN) * IO_ALIGN;
    if (spanStart < 0 || p.path !== spanPath || a0 > spanEnd) {
      close();
      if (!paths.includes(p.path)) paths.push(p.path);
      spanStart = a0;
      spanEnd = a1;
      spanPath = p.path;
      spanSlot = cursor;
      spanNeed = p.offset + p.bytes;
    } else {
      spanEnd = Math.max(spanEnd, a1);
      spanNeed = Math.max(spanNeed, p.offset + p.bytes);
    }
    views.push({ role: p.role, weight: p.weight, slotOffset: spanSlot + (p.offset - spanStart) });
  }
  close();
  return { paths, spans: Float64Array.from(spans), views, slotBytes: cursor, tensorBytes: parts.reduce((s, p) => s + p.bytes, 0) };
}

/** The expert's weights as views into its slot of `arena` at byte `base`. */
export function slotWeights(plan: ExpertReadPlan, arena: ArrayBuffer, base: number): SwiGluWeights {
  const w = {} as Record<Role, Weight>;
  for (const { role, weight, slotOffset } of plan.views) {
    const Ctor = weight.data.constructor as ViewCtor;
    w[role] = { ...weight, data: new Ctor(arena, base + slotOffset, weight.data.length) };
  }
  return w;
}
