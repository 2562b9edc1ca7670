/**
 * Streaming text of a growing list of generated ids. Decodes the tokens since the last newline (as
 * Hugging Face's TextStreamer does), not the whole output each step, and holds back a trailing
 * partial UTF-8 character until the next token completes it. Decoding a window rather than single
 * tokens keeps tokenizers whose pieces decode differently alone (SentencePiece's leading spaces) right.
 */
export class Detokenizer {
  private windowStart = 0;
  private shown = '';

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  /** The text that `generated` (the whole output so far, one id longer than last time) adds. */
  push(generated: readonly number[]): string {
    const text = this.decode(generated.slice(this.windowStart));
    const ready = text.endsWith('\uFFFD') ? this.shown : text;
    const delta = ready.startsWith(this.shown) ? ready.slice(this.shown.length) : '';
    if (ready.startsWith(this.shown)) this.shown = ready;
    if (this.shown.endsWith('\n')) {
      this.windowStart = generated.length;
      this.shown = '';
    }
    return delta;
  }
}
