// BPE merges recovered from a vocabulary that lists no merges (a SentencePiece tokenizer.model, a
// GGUF `llama` tokenizer). The order is transformers' `generate_merges`, because the BPE model
// applies the lowest-ranked pair first and the ids must equal what transformers builds: every way
// of cutting a token into two vocabulary tokens is a merge; merges are ranked by the token's score
// (highest first) when scores are given, else by the token's id (lowest first), ties broken by the
// lengths of the two halves, and otherwise kept in vocabulary order (both sorts are stable).

export type Merge = [string, string];

interface Candidate {
  left: string;
  right: string;
  key: number;
  leftLength: number;
  rightLength: number;
}

/**
 * `vocab` maps token -> id. With `scores` (token -> score) the merges are ordered by score,
 * descending; without, by the merged token's id, ascending. Lengths are in code points, as
 * Python's `len`.
 */
export function generateMerges(
  vocab: ReadonlyMap<string, number>,
  scores?: ReadonlyMap<string, number>,
): Merge[] {
  const descending = scores !== undefined;
  const keyed = scores ?? vocab;
  const candidates: Candidate[] = [];
  for (const [token, key] of keyed) {
    const chars = Array.from(token);
    const local: Candidate[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      if (vocab.has(left) && vocab.has(right)) {
        local.push({ left, right, key, leftLength: i, rightLength: chars.length - i });
      }
    }
    local.sort(
      (a, b) =>
        (vocab.get(a.left) as number) - (vocab.get(b.left) as number) ||
        (vocab.get(a.right) as number) - (vocab.get(b.right) as number),
    );
    candidates.push(...local);
  }
  const sign = descending ? -1 : 1;
  candidates.sort(
    (a, b) =>
      sign *
      (compareNumbers(a.key, b.key) ||
        a.leftLength - b.leftLength ||
        a.rightLength - b.rightLength),
  );
  return candidates.map((c) => [c.left, c.right]);
}

// -0 and 0 tie, as in Python; a difference would be -0 (falsy) anyway, this just says so.
function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
