/**
 * Epoch batch order: shuffled by a seeded RNG, with optional length bucketing so a micro-batch
 * holds sequences of similar length (less padding) while the order stays random.
 */
export interface BatchPlanOptions {
  microBatchSize: number;
  /** Sort within windows of this many micro-batches; 0 or 1 = no bucketing. */
  bucketWindow: number;
  rng: () => number;
}

/** Fisher–Yates shuffle in place with the given RNG. */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const swap = items[i]!;
    items[i] = items[j]!;
    items[j] = swap;
  }
  return items;
}

/** Returns micro-batches of example indices covering every example exactly once. */
export function planEpochBatches(
  lengths: ArrayLike<number>,
  options: BatchPlanOptions,
): number[][] {
  const { microBatchSize, bucketWindow, rng } = options;
  if (microBatchSize < 1) throw new Error(`micro-batch size must be >= 1, got ${microBatchSize}`);
  const order = shuffleInPlace(
    Array.from({ length: lengths.length }, (_, i) => i),
    rng,
  );
  const batches: number[][] = [];
  const windowSize = Math.max(1, bucketWindow) * microBatchSize;
  for (let start = 0; start < order.length; start += windowSize) {
    const window = order.slice(start, start + windowSize);
    if (bucketWindow > 1) window.sort((a, b) => lengths[a]! - lengths[b]! || a - b);
    for (let i = 0; i < window.length; i += microBatchSize) {
      batches.push(window.slice(i, i + microBatchSize));
    }
  }
  // Bucketing groups similar lengths; shuffling the batches keeps long ones from clustering.
  return bucketWindow > 1 ? shuffleInPlace(batches, rng) : batches;
}

/**
 * How many whole posts make a micro-batch of about `microBatchSize` examples: micro_batch_size
 * keeps counting (post, criterion) pairs, rounded to whole posts, at least one (with nine pairs
 * per post: 8 -> 1 post, 16 -> 2, 32 -> 4).
 */
export function postsPerMicroBatch(microBatchSize: number, examplesPerPost: number): number {
  if (microBatchSize < 1) throw new Error(`micro-batch size must be >= 1, got ${microBatchSize}`);
  return Math.max(1, Math.round(microBatchSize / Math.max(1, examplesPerPost)));
}

/**
 * Micro-batches of whole posts: `posts[p]` lists post p's items (kept together and in order),
 * `lengths[p]` its packed length. Posts are shuffled and bucketed exactly as planEpochBatches
 * does examples; each micro-batch lists its posts' items post after post.
 */
export function planPostBatches(
  posts: readonly (readonly number[])[],
  lengths: ArrayLike<number>,
  options: { postsPerBatch: number; bucketWindow: number; rng: () => number },
): number[][] {
  return planEpochBatches(lengths, {
    microBatchSize: options.postsPerBatch,
    bucketWindow: options.bucketWindow,
    rng: options.rng,
  }).map((batch) => batch.flatMap((post) => posts[post]!));
}
