import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { fail } from '../errors.js';

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

/**
 * The template used when the checkpoint has none (documented in docs/serving.md): each message as
 * `<|role|>` on its own line followed by its content, then `<|assistant|>` to prompt the reply.
 * It is plain text, so it works with any tokenizer.
 */
export const DEFAULT_CHAT_TEMPLATE =
  '{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

/**
 * Renders chat messages into a prompt with the model's own template, exactly as Hugging Face's
 * `apply_chat_template` does: the Jinja template from `tokenizer_config.json` ("chat_template", a
 * string or a list of named templates, of which "default" is used), with `bos_token` and `eos_token`.
 */
export class ChatTemplate {
  private constructor(
    private readonly template: Template,
    readonly source: 'tokenizer_config.json' | 'default',
    private readonly bos: string,
    private readonly eos: string,
  ) {}

  static load(modelDir: string): ChatTemplate {
    const path = join(modelDir, 'tokenizer_config.json');
    let cfg: Record<string, unknown> = {};
    if (existsSync(path)) {
      try {
        cfg = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        fail('E_BAD_CHECKPOINT', `${path}: not valid JSON (${(e as Error).message})`);
      }
    }
    const text = pickTemplate(cfg.chat_template, path);
    let template: Template;
    try {
      template = new Template(text ?? DEFAULT_CHAT_TEMPLATE);
    } catch (e) {
      fail('E_BAD_CHECKPOINT', `${path}: chat_template does not parse (${(e as Error).message})`);
    }
    return new ChatTemplate(template, text === undefined ? 'default' : 'tokenizer_config.json', tokenText(cfg.bos_token), tokenText(cfg.eos_token));
  }

  render(messages: readonly ChatMessage[]): string {
    return this.template.render({ messages, add_generation_prompt: true, bos_token: this.bos, eos_token: this.eos });
  }
}

function pickTemplate(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v as { name?: unknown; template?: unknown }[];
    const t = named.find((x) => x.name === 'default') ?? named[0];
    if (t && typeof t.template === 'string') return t.template;
  }
  fail('E_BAD_CHECKPOINT', `${path}: chat_template must be a string or a list of {name, template}`);
}

/** bos_token / eos_token are strings or AddedToken objects ({content: ...}). */
function tokenText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return '';
}
