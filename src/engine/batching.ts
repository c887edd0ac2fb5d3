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
