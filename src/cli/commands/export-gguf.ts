import { existsSync, realpathSync } from 'node:fs';
import { sep } from 'node:path';
import { fail } from '../../errors.js';
import type { Command } from 'commander';
import type { ExportType } from '../../model/gguf/metadata.js';
import { EXPORT_TYPES, exportGguf } from '../../model/gguf/export.js';
import { fileMapper } from '../../tensor/backends.js';
import { choiceArg, outputPathArg } from '../parse.js';
import { progressLines } from '../progress.js';

/** `moesaic export-gguf`: write a checkpoint as a GGUF file llama.cpp loads (docs/gguf.md). */
export function register(program: Command): void {
  program
    .command('export-gguf')
    .description('write a Hugging Face checkpoint as a GGUF file for llama.cpp (experts merged, q/k permuted for llama)')
    .requiredOption('--model <dir>', 'Hugging Face checkpoint folder (or a GGUF file to re-export)')
    .requiredOption('--out <file>', 'GGUF file to write (appears only when complete)', outputPathArg('--out'))
    .option('--type <type>', `type of the big matrices: ${EXPORT_TYPES.join('|')} (default: the checkpoint's f32 or bf16)`, choiceArg('--type', EXPORT_TYPES))
    .action(async (o: { model: string; out: string; type?: ExportType }) => {
      const started = Date.now();
      if (existsSync(o.out) && existsSync(o.model) && isInside(realpathSync(o.out), realpathSync(o.model))) {
        fail('E_BAD_OPTION', `--out ${o.out} would overwrite the checkpoint being exported (${o.model})`);
      }
      const onProgress = progressLines('export-gguf', 'tensors');
      const r = exportGguf({ model: o.model, out: o.out, type: o.type, mapFile: await fileMapper(), onProgress });
      for (const w of r.warnings) process.stderr.write(`export-gguf: warning: llama.cpp may refuse this file: ${w}\n`);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`wrote ${r.path} (${r.arch}, ${r.type}, ${r.tensors} tensors) in ${secs} s\n`);
    });
}

/** path is target itself or lies inside the folder target. */
function isInside(path: string, target: string): boolean {
  return path === target || path.startsWith(target.endsWith(sep) ? target : target + sep);
}
