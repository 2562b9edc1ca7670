/**
 * A small byte-level BPE trainer, producing the vocab and merges of a Hugging Face "BPE" model whose
 * pre-tokenizer and decoder are "ByteLevel" (the GPT-2 scheme): text is split by the GPT-2 regex,
 * each piece is UTF-8 encoded and every byte is shown as one printable character, and merges join
 * the most frequent adjacent pair of symbols, repeatedly.
 */

/** The GPT-2 byte -> printable character table used by ByteLevel pre-tokenizers and decoders. */
export function byteToChar(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}

/** The pre-tokenizer split of ByteLevel (use_regex: true): contractions, words, numbers, symbols, spaces. */
const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Text -> byte-level words (each a string of byte characters), as the ByteLevel pre-tokenizer does. */
export function byteLevelWords(text: string, table = byteToChar()): string[] {
  const enc = new TextEncoder();
  return (text.match(SPLIT) ?? []).map((w) => Array.from(enc.encode(w), (b) => table[b]!).join(''));
}

export interface BpeResult {
  /** Symbols in id order: the 256 byte characters (in byte order), then one per merge. */
  readonly symbols: string[];
  /** Merges in priority order, each "left right". */
  readonly merges: string[];
}

/**
 * Learns up to maxMerges merges from the corpus. Each step merges the most frequent adjacent pair
 * (ties broken by the pair's text, so the result is deterministic); pairs seen fewer than twice are
 * never merged, so a small corpus may give fewer merges than asked.
 */
export function trainBpe(corpus: string, maxMerges: number): BpeResult {
  const table = byteToChar();
  const counts = new Map<string, number>();
  for (const w of byteLevelWords(corpus, table)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts.entries()].map(([w, n]) => ({ parts: Array.from(w), n }));
  const symbols = [...table];
  const merges: string[] = [];
  while (merges.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { parts, n } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = `${parts[i]} ${parts[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best = '';
    let bestN = 1;
    for (const [key, n] of pairs) {
      if (n > bestN || (n === bestN && best !== '' && key < best)) {
        best = key;
        bestN = n;
      }
    }
    if (best === '') break;
    const [left, right] = best.split(' ') as [string, string];
    const joined = left + right;
    for (const w of words) {
      const p = w.parts;
      const next: string[] = [];
      for (let i = 0; i < p.length; i++) {
        if (i + 1 < p.length && p[i] === left && p[i + 1] === right) {
          next.push(joined);
          i++;
        } else next.push(p[i]!);
      }
      w.parts = next;
    }
    merges.push(best);
    symbols.push(joined);
  }
  return { symbols, merges };
}

const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'st', 'tr', 'pl'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou'];

/**
 * Word-like filler symbols ('Ġ' + syllables, i.e. " bako", " tristu" ...) for vocab ids that merges
 * did not reach, so that every id decodes to visible text. Skips anything in `taken`.
 */
export function fillerSymbols(count: number, taken: ReadonlySet<string>): string[] {
  const syllables = ONSETS.flatMap((o) => VOWELS.map((v) => o + v));
  const out: string[] = [];
  const seen = new Set(taken);
  for (let len = 1; out.length < count; len++) {
    // all words of `len` syllables, in a fixed order: odometer over the syllable list
    const idx = new Array<number>(len).fill(0);
    while (out.length < count) {
      const word = 'Ġ' + idx.map((k) => syllables[k]).join('');
      if (!seen.has(word)) {
        seen.add(word);
        out.push(word);
      }
      let pos = len - 1;
      while (pos >= 0 && ++idx[pos]! === syllables.length) idx[pos--] = 0;
      if (pos < 0) break;
    }
  }
  return out;
}
