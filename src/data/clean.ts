// Text normalisation shared by the loader and the prompt builder, so a post reaches the tokenizer
// in the same form whichever path it took.

// Zero-width and invisible format characters that carry no meaning for the classifier but split
// tokens: ZWSP, ZWNJ, ZWJ, word joiner, BOM / ZWNBSP, Mongolian vowel separator, soft hyphen.
const ZERO_WIDTH = /\u200B|\u200C|\u200D|\u2060|\uFEFF|\u180E|\u00AD/gu;
// C0/C1 controls; whitespace controls become spaces first so words do not merge.
const WHITESPACE_CONTROLS = /[\t\n\v\f\r\u0085]/gu;
const OTHER_CONTROLS = /\p{Cc}/gu;
const WHITESPACE_RUN = /\s+/gu;

/** NFKC, zero-width and control characters removed, whitespace collapsed to one space, trimmed. */
export function cleanText(text: string): string {
  return text
    .normalize('NFKC')
    .replace(ZERO_WIDTH, '')
    .replace(WHITESPACE_CONTROLS, ' ')
    .replace(OTHER_CONTROLS, '')
    .replace(WHITESPACE_RUN, ' ')
    .trim();
}

/** Number of Unicode code points (what a user means by "characters"), not UTF-16 units. */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Words = runs of non-space characters after cleaning. */
export function wordCount(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/u).length;
}

/** Code-point order (what numpy and Python use for str), not JavaScript's UTF-16 order. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}
