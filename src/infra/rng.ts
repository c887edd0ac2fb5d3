/**
 * A seeded uniform generator on [0, 1) (mulberry32: 32-bit state, period 2^32, fast and good
 * enough for shuffling and sampling; not for cryptography). Same seed, same sequence, on every
 * platform, because it uses only 32-bit integer arithmetic.
 */
export function createRng(seed: number): () => number {
  if (!Number.isFinite(seed))
    throw new RangeError(`createRng: seed must be a finite number, got ${seed}`);
  let state = Math.trunc(seed) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A child seed from a base seed and labels (e.g. `deriveSeed(42, 'fold', 3)`), so independent
 * streams do not overlap and do not depend on the order they are created in. FNV-1a over the text.
 */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  let hash = 0x811c9dc5;
  for (const char of [String(Math.trunc(seed)), ...labels.map(String)].join('\u0000')) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
