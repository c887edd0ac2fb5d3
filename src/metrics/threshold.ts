/**
 * Threshold sweeps that maximise F1, and per-criterion threshold tuning with a fallback to the
 * global threshold for criteria with too few positives to tune on. Rules in docs/metrics.md.
 */
import { thresholdMetricsFromConfusion } from './binary.js';
import {
  sortCriterionIds,
  validateCriterionIds,
  validateInputs,
  type ValidatedInputs,
} from './validate.js';

export type ThresholdGrid = 'fixed' | 'exact';

export interface SweepPoint {
  threshold: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface ThresholdSweep {
  grid: ThresholdGrid;
  /** The chosen threshold: highest F1, then closest to 0.5, then the smaller. */
  threshold: number;
  f1: number;
  precision: number;
  recall: number;
  /** One point per candidate threshold, in increasing threshold order. */
  curve: SweepPoint[];
}

export interface SweepOptions {
  /** 'fixed': 0.00, 0.01, ..., 1.00 (k / 100 in float64); 'exact': every distinct score. */
  grid?: ThresholdGrid;
}

/** The fixed grid k / 100 for k = 0..100; k / 100 (not repeated addition) keeps 0.07 == 7/100. */
export const fixedThresholdGrid: readonly number[] = Object.freeze(
  Array.from({ length: 101 }, (_, k) => k / 100),
);

/**
 * Precision, recall and F1 at every candidate threshold (predict 1 when score >= threshold),
 * and the F1-maximising one. Tie rule: highest F1; among equal F1 the threshold closest to 0.5
 * (distance in float64); among equal distance the smaller threshold. With no positive label every
 * F1 is 0 (zero_division), so the rule picks the candidate closest to 0.5.
 */
export function thresholdSweep(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: SweepOptions = {},
): ThresholdSweep {
  return sweepValidated(validateInputs(labels, scores, { probabilities: true }), options);
}

function sweepValidated(inputs: ValidatedInputs, options: SweepOptions): ThresholdSweep {
  const grid = options.grid ?? 'fixed';
  if (grid !== 'fixed' && grid !== 'exact') {
    throw new Error(`grid is ${JSON.stringify(grid)}; expected 'fixed' or 'exact'`);
  }
  const { labels, scores } = inputs;
  const n = labels.length;
  const sorted = Float64Array.from(scores).sort();
  const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]!);
  // positivesFrom[k]: positives among the n - k highest scores (sorted positions k..n-1).
  const positivesFrom = new Float64Array(n + 1);
  for (let k = n - 1; k >= 0; k--) positivesFrom[k] = positivesFrom[k + 1]! + labels[order[k]!]!;
  const positives = positivesFrom[0]!;

  const candidates =
    grid === 'fixed' ? fixedThresholdGrid : [...new Set(sorted)].sort((a, b) => a - b);
  const curve: SweepPoint[] = [];
  let best: SweepPoint | undefined;
  for (const threshold of candidates) {
    const first = lowerBound(sorted, threshold);
    const tp = positivesFrom[first]!;
    const predicted = n - first;
    const metrics = thresholdMetricsFromConfusion({
      tp,
      fp: predicted - tp,
      fn: positives - tp,
      tn: n - predicted - (positives - tp),
    });
    const point = {
      threshold,
      precision: metrics.precision,
      recall: metrics.recall,
      f1: metrics.f1,
    };
    curve.push(point);
    if (best === undefined || isBetter(point, best)) best = point;
  }
  if (best === undefined) throw new Error('threshold sweep has no candidate threshold');
  return { grid, ...best, curve };
}

function isBetter(candidate: SweepPoint, incumbent: SweepPoint): boolean {
  if (candidate.f1 !== incumbent.f1) return candidate.f1 > incumbent.f1;
  const candidateDistance = Math.abs(candidate.threshold - 0.5);
  const incumbentDistance = Math.abs(incumbent.threshold - 0.5);
  if (candidateDistance !== incumbentDistance) return candidateDistance < incumbentDistance;
  return candidate.threshold < incumbent.threshold;
}

/** First index whose value is >= target in an ascending array. */
function lowerBound(sorted: Float64Array, target: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface CriterionThreshold {
  threshold: number;
  /** F1 of this criterion's pairs at `threshold`. */
  f1: number;
  positives: number;
  n: number;
  /** 'global' when the criterion had fewer than minPositives positives and fell back. */
  source: 'criterion' | 'global';
}

export interface TunedThresholds {
  grid: ThresholdGrid;
  minPositives: number;
  global: { threshold: number; f1: number };
  perCriterion: Record<string, CriterionThreshold>;
  /** Criterion id → threshold, ready for `perCriterionMetrics`. */
  thresholds: Record<string, number>;
  /** Criteria that used the global threshold, in natural id order. */
  fellBack: string[];
}

export interface TuneOptions extends SweepOptions {
  /** A criterion needs at least this many positive pairs to get its own threshold. */
  minPositives?: number;
}

/**
 * A global F1-optimal threshold over all pairs and one per criterion; a criterion with fewer
 * than `minPositives` positives (default 10) keeps the global threshold and is listed in
 * `fellBack`, because an F1 optimum over a handful of positives is mostly noise.
 */
export function tuneThresholds(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  criterionIds: ArrayLike<string>,
  options: TuneOptions = {},
): TunedThresholds {
  const minPositives = options.minPositives ?? 10;
  if (!Number.isInteger(minPositives) || minPositives < 0) {
    throw new Error(`minPositives is ${minPositives}; expected a non-negative integer`);
  }
  const inputs = validateInputs(labels, scores, { probabilities: true });
  const ids = validateCriterionIds(criterionIds, inputs.labels.length);
  const globalSweep = sweepValidated(inputs, options);
  const perCriterion: Record<string, CriterionThreshold> = {};
  const thresholds: Record<string, number> = {};
  const fellBack: string[] = [];
  for (const id of sortCriterionIds(ids)) {
    const subset = subsetWhere(inputs, ids, id);
    const positives = subset.labels.reduce((a, b) => a + b, 0);
    const n = subset.labels.length;
    let entry: CriterionThreshold;
    if (positives < minPositives) {
      fellBack.push(id);
      const atGlobal = sweepAt(subset, globalSweep.threshold);
      entry = { threshold: globalSweep.threshold, f1: atGlobal, positives, n, source: 'global' };
    } else {
      const sweep = sweepValidated(subset, options);
      entry = { threshold: sweep.threshold, f1: sweep.f1, positives, n, source: 'criterion' };
    }
    perCriterion[id] = entry;
    thresholds[id] = entry.threshold;
  }
  return {
    grid: globalSweep.grid,
    minPositives,
    global: { threshold: globalSweep.threshold, f1: globalSweep.f1 },
    perCriterion,
    thresholds,
    fellBack,
  };
}

function sweepAt(inputs: ValidatedInputs, threshold: number): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < inputs.labels.length; i++) {
    const predicted = inputs.scores[i]! >= threshold;
    if (inputs.labels[i] === 1) {
      if (predicted) tp++;
      else fn++;
    } else if (predicted) fp++;
  }
  const tn = inputs.labels.length - tp - fp - fn;
  return thresholdMetricsFromConfusion({ tp, fp, fn, tn }).f1;
}

export function subsetWhere(
  inputs: ValidatedInputs,
  ids: readonly string[],
  id: string,
): ValidatedInputs {
  const indices: number[] = [];
  ids.forEach((value, i) => {
    if (value === id) indices.push(i);
  });
  return {
    labels: Uint8Array.from(indices, (i) => inputs.labels[i]!),
    scores: Float64Array.from(indices, (i) => inputs.scores[i]!),
  };
}
