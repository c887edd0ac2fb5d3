import { planEpochBatches } from '../../../src/engine/batching.js';

function seededRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('planEpochBatches', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => (i * 37) % 200);

  test('covers every example exactly once, in micro-batches of the given size', () => {
    const batches = planEpochBatches(lengths, {
      microBatchSize: 8,
      bucketWindow: 4,
      rng: seededRng(1),
    });
    const seen = batches.flat().sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expect(batches.every((batch) => batch.length <= 8)).toBe(true);
  });

  test('deterministic by seed, different across seeds', () => {
    const a = planEpochBatches(lengths, { microBatchSize: 8, bucketWindow: 4, rng: seededRng(7) });
    const b = planEpochBatches(lengths, { microBatchSize: 8, bucketWindow: 4, rng: seededRng(7) });
    const c = planEpochBatches(lengths, { microBatchSize: 8, bucketWindow: 4, rng: seededRng(8) });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  test('bucketing reduces padding compared to no bucketing', () => {
    const padding = (batches: number[][]) =>
      batches.reduce((sum, batch) => {
        const longest = Math.max(...batch.map((i) => lengths[i]!));
        return sum + batch.reduce((inner, i) => inner + longest - lengths[i]!, 0);
      }, 0);
    const bucketed = planEpochBatches(lengths, {
      microBatchSize: 8,
      bucketWindow: 8,
      rng: seededRng(3),
    });
    const plain = planEpochBatches(lengths, {
      microBatchSize: 8,
      bucketWindow: 0,
      rng: seededRng(3),
    });
    expect(padding(bucketed)).toBeLessThan(padding(plain));
  });
});
