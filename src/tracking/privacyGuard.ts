import { PrivacyGuardError } from './errors.js';

/**
 * Refuses values that share a run of at least `minMatchLength` characters with any guarded text
 * (after lower-casing and collapsing whitespace). That covers both directions the brief names: a
 * whole post pasted into a tag, and a tag value that is a sentence lifted from a post.
 *
 * Guarded texts are reduced to winnowed fingerprints: hashes of every k-gram (k = shingleLength),
 * keeping only the minimum hash in each window of w consecutive k-grams, with
 * k + w - 1 = minMatchLength. Winnowing guarantees that any shared substring of length
 * ≥ minMatchLength shares at least one kept fingerprint, while storing about 2/(w+1) of the k-grams,
 * so a whole corpus of posts fits in a few MB. A value is checked by hashing all its k-grams.
 * Hash collisions can only cause a false refusal (52-bit hashes make that negligible), never a leak.
 */
export class PrivacyGuard {
  readonly minMatchLength: number;
  private readonly shingleLength: number;
  private readonly windowSize: number;
  private readonly fingerprints = new Set<number>();
  private guardedCount = 0;

  constructor(options: { minMatchLength?: number } = {}) {
    this.minMatchLength = options.minMatchLength ?? 20;
    if (!Number.isInteger(this.minMatchLength) || this.minMatchLength < 8)
      throw new RangeError(`minMatchLength must be an integer >= 8, got ${this.minMatchLength}`);
    this.shingleLength = Math.max(8, this.minMatchLength - 4);
    this.windowSize = this.minMatchLength - this.shingleLength + 1;
  }

  /** Number of guarded texts added so far. */
  get size(): number {
    return this.guardedCount;
  }

  /** Adds texts to refuse. Texts shorter than minMatchLength cannot be matched and are ignored. */
  add(texts: Iterable<string>): void {
    for (const text of texts) {
      const hashes = shingleHashes(normalizeGuardText(text), this.shingleLength);
      if (hashes.length === 0) continue;
      this.guardedCount++;
      if (hashes.length <= this.windowSize) {
        this.fingerprints.add(minOf(hashes, 0, hashes.length));
        continue;
      }
      let lastKept = -1;
      for (let start = 0; start + this.windowSize <= hashes.length; start++) {
        // Rightmost minimum, so the same k-gram is kept for successive windows.
        let best = start;
        for (let i = start + 1; i < start + this.windowSize; i++)
          if ((hashes[i] as number) <= (hashes[best] as number)) best = i;
        if (best !== lastKept) {
          this.fingerprints.add(hashes[best] as number);
          lastKept = best;
        }
      }
    }
  }

  /** True when `value` shares ≥ minMatchLength characters with a guarded text. */
  matches(value: string): boolean {
    if (this.fingerprints.size === 0) return false;
    const normalized = normalizeGuardText(value);
    if (normalized.length < this.minMatchLength) return false;
    for (const hash of shingleHashes(normalized, this.shingleLength))
      if (this.fingerprints.has(hash)) return true;
    return false;
  }

  /**
   * Throws a PrivacyGuardError when `value` matches. `what` names the field (e.g. "the value of
   * param 'notes'"); the error never contains the value itself.
   */
  check(what: string, value: string): void {
    if (this.matches(value))
      throw new PrivacyGuardError(
        `Privacy guard: refused to send ${what} to MLflow: it contains text from a guarded post (${value.length} characters; not shown)`,
      );
  }
}

/** Lower-case, whitespace runs collapsed to one space, trimmed: formatting changes must not hide a post. */
export function normalizeGuardText(text: string): string {
  return text.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim();
}

const modulus1 = 2147483647; // 2^31 - 1
const modulus2 = 2147483629; // a prime just below 2^31
const base1 = 257;
const base2 = 263;

/**
 * Rolling polynomial hashes of every k-gram, two moduli combined into a 52-bit integer (exact in a
 * double). Products stay below 2^53 because both factors are < 2^31 and 2^22 at most per step.
 */
function shingleHashes(text: string, k: number): number[] {
  const n = text.length;
  if (n < k) return [];
  let pow1 = 1;
  let pow2 = 1;
  for (let i = 0; i < k - 1; i++) {
    pow1 = mulMod(pow1, base1, modulus1);
    pow2 = mulMod(pow2, base2, modulus2);
  }
  let h1 = 0;
  let h2 = 0;
  const out = new Array<number>(n - k + 1);
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i);
    if (i >= k) {
      const old = text.charCodeAt(i - k);
      h1 = (h1 - mulMod(old, pow1, modulus1) + modulus1) % modulus1;
      h2 = (h2 - mulMod(old, pow2, modulus2) + modulus2) % modulus2;
    }
    h1 = (mulMod(h1, base1, modulus1) + code) % modulus1;
    h2 = (mulMod(h2, base2, modulus2) + code) % modulus2;
    if (i >= k - 1) out[i - k + 1] = h1 * 2097152 + (h2 % 2097152);
  }
  return out;
}

/** (a * b) mod m without losing precision: a, b < 2^31, split b into 16-bit halves. */
function mulMod(a: number, b: number, m: number): number {
  const high = Math.floor(b / 65536);
  const low = b % 65536;
  return (((a * high) % m) * 65536 + a * low) % m;
}

function minOf(values: number[], from: number, to: number): number {
  let min = values[from] as number;
  for (let i = from + 1; i < to; i++) if ((values[i] as number) < min) min = values[i] as number;
  return min;
}
