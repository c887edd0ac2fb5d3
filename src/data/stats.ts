/** min, median, 95th percentile, max and mean of a list of numbers. */
export interface SummaryStats {
  min: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

/** Percentile with linear interpolation between order statistics (numpy's default method). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function summaryStats(values: readonly number[]): SummaryStats {
  if (values.length === 0) return { min: NaN, p50: NaN, p95: NaN, max: NaN, mean: NaN };
  const sorted = [...values].sort((x, y) => x - y);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    min: sorted[0] as number,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    max: sorted[sorted.length - 1] as number,
    mean: sum / sorted.length,
  };
}
