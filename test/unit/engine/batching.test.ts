import {
  planEpochBatches,
  planPostBatches,
  postsPerMicroBatch,
} from '../../../src/engine/batching.js';

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

describe('planPostBatches', () => {
  // 23 posts of 9 items each (item = post * 9 + k), packed lengths varying.
  const posts = Array.from({ length: 23 }, (_, p) =>
    Array.from({ length: 9 }, (_, k) => p * 9 + k),
  );
  const lengths = posts.map((_, p) => 100 + ((p * 53) % 90));

  test('postsPerMicroBatch rounds micro_batch_size (pairs) to whole posts, at least one', () => {
    expect(postsPerMicroBatch(8, 9)).toBe(1);
    expect(postsPerMicroBatch(16, 9)).toBe(2);
    expect(postsPerMicroBatch(32, 9)).toBe(4);
    expect(postsPerMicroBatch(1, 9)).toBe(1);
  });

  test('keeps each post whole and in order, every item exactly once', () => {
    for (const bucketWindow of [0, 4]) {
      const batches = planPostBatches(posts, lengths, {
        postsPerBatch: 2,
        bucketWindow,
        rng: seededRng(5),
      });
      expect(batches).toHaveLength(12);
      expect(batches.flat().sort((a, b) => a - b)).toEqual(posts.flat());
      for (const batch of batches) {
        expect(batch.length % 9).toBe(0);
        for (let start = 0; start < batch.length; start += 9) {
          const post = Math.floor(batch[start]! / 9);
          expect(batch.slice(start, start + 9)).toEqual(posts[post]);
        }
      }
    }
  });

  test('deterministic by seed', () => {
    const plan = (seed: number) =>
      planPostBatches(posts, lengths, { postsPerBatch: 2, bucketWindow: 4, rng: seededRng(seed) });
    expect(plan(3)).toEqual(plan(3));
    expect(plan(3)).not.toEqual(plan(4));
  });
});
