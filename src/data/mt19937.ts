// numpy's legacy RandomState (MT19937) in TypeScript, bit-for-bit: same seeding (init_genrand
// for an integer seed, init_by_array for an array seed), same 32-bit output, same random_sample
// and the same Fisher-Yates shuffle with masked rejection sampling. scikit-learn shuffles with
// this generator, so matching it is what makes a seed give sklearn's folds.

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class RandomState {
  private readonly mt = new Uint32Array(N);
  private pos = N;

  /** An integer seed in [0, 2^32 - 1] or a non-empty array of such integers, as numpy accepts. */
  constructor(seed: number | readonly number[]) {
    if (typeof seed === 'number') {
      checkSeedWord(seed);
      this.initGenrand(seed);
    } else {
      if (seed.length === 0) throw new RangeError('Seed must be non-empty');
      seed.forEach(checkSeedWord);
      this.initByArray(seed);
    }
  }

  private initGenrand(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] as number;
      mt[i] = (Math.imul(1812433253, (prev ^ (prev >>> 30)) >>> 0) + i) >>> 0;
    }
    this.pos = N;
  }

  private initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1] as number;
      const mixed = Math.imul((prev ^ (prev >>> 30)) >>> 0, 1664525) >>> 0;
      mt[i] = (((mt[i] as number) ^ mixed) >>> 0) + (key[j] as number) + j;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1] as number;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1] as number;
      const mixed = Math.imul((prev ^ (prev >>> 30)) >>> 0, 1566083941) >>> 0;
      mt[i] = ((((mt[i] as number) ^ mixed) >>> 0) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1] as number;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.pos = N;
  }

  private twist(): void {
    const mt = this.mt;
    const step = (k: number, next: number, far: number): void => {
      const y = ((mt[k] as number) & UPPER_MASK) | ((mt[next] as number) & LOWER_MASK);
      mt[k] = ((mt[far] as number) ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)) >>> 0;
    };
    let k = 0;
    for (; k < N - M; k++) step(k, k + 1, k + M);
    for (; k < N - 1; k++) step(k, k + 1, k + M - N);
    step(N - 1, 0, M - 1);
    this.pos = 0;
  }

  /** Copy of the 624-word state (numpy's `get_state()[1]`), for tests. */
  stateKey(): number[] {
    return Array.from(this.mt);
  }

  /** Next raw 32-bit output (numpy's `next_uint32`). */
  nextUint32(): number {
    if (this.pos >= N) this.twist();
    let y = this.mt[this.pos++] as number;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits, as `RandomState.random_sample()`. */
  randomSample(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform integer in [0, max] by masked rejection, as numpy's `random_interval` (max < 2^32). */
  randomInterval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    for (;;) {
      const value = (this.nextUint32() & mask) >>> 0;
      if (value <= max) return value;
    }
  }

  /** In-place shuffle of a 1-D array, as `RandomState.shuffle` (Fisher-Yates from the end). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.randomInterval(i);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** `RandomState.permutation(n)`: a shuffled 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}

function checkSeedWord(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Seed must be an integer between 0 and 2**32 - 1, got ${value}`);
  }
}
