// The bf16 matmul precision mode (--matmul-precision bf16) on whole models: generated tiny bf16
// checkpoints of every family, the mode's logits against the exact mode's, against the float64 Hugging
// Face reference, and against the reference backend computing the same rounding; through the library
// and the CLI. The bounds are the ones docs/kernels.md states and how they were found.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../src/model/model.js';
import type { RunOptions } from '../../src/options/run-options.js';
import { loadReference, referenceLogits } from '../reference/hf-reference.js';
import { cli, cliLogits, compareRows, genModel, removeDir, tempDir } from '../reference/harness.js';

const ARCHS = ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe'] as const;
/**
 * bf16 mode vs exact mode and vs the float64 reference, max_j |a_j - b_j| / max_j |b_j| per position
 * (docs/kernels.md). Measured over 15 seeds per family (9 positions): Mixtral, the bench's family, at
 * most 3.4e-3 (median 2.8e-3), OLMoE 3.5e-3; the Qwen families up to 4.4e-2 where rounding flips a
 * near-tie in routing and a token goes to another expert.
 */
const BF16_MODE_TOL: Record<(typeof ARCHS)[number], number> = { mixtral: 1e-2, olmoe: 1e-2, qwen2_moe: 1e-1, qwen3_moe: 1e-1 };
/** bf16 mode on the cpu backend vs the reference backend rounding the same activations (measured 9e-8). */
const SAME_ROUNDING_TOL = 1e-4;

const root = tempDir('moesaic-precision-');
const worst = { vsExact: 0, vsHf: 0, vsRefBf16: 0 };
after(() => {
  removeDir(root);
  console.log(`# bf16 matmul precision, worst relative logits error: vs exact mode ${worst.vsExact.toExponential(2)}, vs float64 reference ${worst.vsHf.toExponential(2)}, vs ref backend in bf16 ${worst.vsRefBf16.toExponential(2)}`);
});

async function logits(dir: string, ids: number[], opts: RunOptions): Promise<Float32Array[]> {
  const m = await loadModel(dir, opts);
  try {
    return m.logits(ids);
  } finally {
    m.close();
  }
}

const toF64 = (rows: Float32Array[]): Float64Array[] => rows.map((r) => Float64Array.from(r));

for (const arch of ARCHS) {
  describe(`${arch} bf16 checkpoint`, () => {
    const dir = join(root, arch);
    const ids = [1, 17, 300, 42, 511, 7, 7, 99, 3];
    let exact: Float32Array[];
    let bf16: Float32Array[];
    before(async () => {
      await genModel(dir, arch, { seed: 5, dtype: 'bf16' });
      exact = await logits(dir, ids, { backend: 'cpu' });
      bf16 = await logits(dir, ids, { backend: 'cpu', matmulPrecision: 'bf16' });
    });

    test('bf16 mode is within its bound of the exact mode and of the float64 reference, and not equal to exact', () => {
      const vsExact = compareRows(bf16, toF64(exact));
      const vsHf = compareRows(bf16, referenceLogits(loadReference(dir), ids));
      worst.vsExact = Math.max(worst.vsExact, vsExact.maxErr);
      worst.vsHf = Math.max(worst.vsHf, vsHf.maxErr);
      assert.ok(vsExact.maxErr > 0, 'bf16 mode gave exactly the exact mode\'s logits: the precision did not reach the kernels');
      const tol = BF16_MODE_TOL[arch];
      assert.ok(vsExact.maxErr < tol, `vs exact mode: ${vsExact.maxErr} at position ${vsExact.worstRow} (tolerance ${tol})`);
      assert.ok(vsHf.maxErr < tol, `vs float64 reference: ${vsHf.maxErr} at position ${vsHf.worstRow} (tolerance ${tol})`);
    });

    test('the reference backend in bf16 mode computes the same rounding', async () => {
      const ref = await logits(dir, ids, { backend: 'ref', matmulPrecision: 'bf16' });
      const c = compareRows(bf16, toF64(ref));
      worst.vsRefBf16 = Math.max(worst.vsRefBf16, c.maxErr);
      assert.ok(c.maxErr < SAME_ROUNDING_TOL, `cpu vs ref, both bf16: ${c.maxErr} at position ${c.worstRow} (tolerance ${SAME_ROUNDING_TOL})`);
    });

    if (arch === 'mixtral') {
      test('the CLI flag gives the library\'s bf16 logits', () => {
        const rows = cliLogits(dir, ids, 'cpu', ['--matmul-precision', 'bf16']);
        rows.forEach((row, t) => row.forEach((v, j) => {
          if (Math.fround(v) !== bf16[t]![j]) assert.fail(`position ${t}, vocab ${j}: CLI ${v}, library ${bf16[t]![j]}`);
        }));
      });

      test('an unknown precision is a one-line E_BAD_OPTION', () => {
        const r = cli(['logits', '--model', dir, '--ids', '1,2', '--matmul-precision', 'fp8']);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr.trim(), /^moesaic: error \[E_BAD_OPTION\]: --matmul-precision must be one of exact\|bf16, got 'fp8'$/);
      });
    }
  });
}
