/**
 * Per-criterion metrics, macro-F1, pooled out-of-fold metrics and fold summaries. Pooling sums
 * confusion counts over folds (Forman & Scholz 2010): averaging per-fold F1 is biased under class
 * imbalance, so the pooled numbers are the headline and the fold mean ± std is reported beside.
 */
import { metricsFromPredictions, type BinaryMetrics } from './binary.js';
import {
  sortCriterionIds,
  validateCriterionIds,
  validateInputs,
  validateThreshold,
} from './validate.js';

export type Thresholds = number | Readonly<Record<string, number>>;

export interface CriterionReport {
  /** Criterion ids in natural order (A1, A2, …, A10). */
  criteria: string[];
  perCriterion: Record<string, BinaryMetrics>;
  /** Mean of the per-criterion F1s (each 0 when undefined, as sklearn's zero_division). */
  macroF1: number;
  /** All pairs together with each pair's own threshold: the micro-averaged numbers. */
  overall: BinaryMetrics;
}

export interface PooledMetrics extends CriterionReport {
  folds: number;
}

export interface FoldPredictions {
  labels: ArrayLike<number>;
  scores: ArrayLike<number>;
  /** Required when `thresholds` is per criterion. */
  criterionIds?: ArrayLike<string>;
  thresholds: Thresholds;
}

interface Pairs {
  labels: Uint8Array;
  scores: Float64Array;
  predicted: Uint8Array;
  ids: readonly string[];
  /** The threshold each pair was classified with. */
  usedThresholds: Float64Array;
}

function thresholdFor(thresholds: Thresholds, id: string | undefined, where: string): number {
  if (typeof thresholds === 'number') return validateThreshold(thresholds, `${where}thresholds`);
  if (id === undefined) {
    throw new Error(`${where}thresholds are per criterion but no criterionIds were given`);
  }
  const value = thresholds[id];
  if (value === undefined) throw new Error(`${where}thresholds has no entry for criterion ${id}`);
  return validateThreshold(value, `${where}thresholds[${JSON.stringify(id)}]`);
}

function classify(fold: FoldPredictions, where: string, idsRequired: boolean): Pairs {
  const inputs = validateInputs(fold.labels, fold.scores, { probabilities: true });
  const n = inputs.labels.length;
  if (fold.criterionIds === undefined && idsRequired) {
    throw new Error(`${where}criterionIds are required`);
  }
  const ids = fold.criterionIds === undefined ? [] : validateCriterionIds(fold.criterionIds, n);
  const predicted = new Uint8Array(n);
  const usedThresholds = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const threshold = thresholdFor(fold.thresholds, ids[i], where);
    usedThresholds[i] = threshold;
    predicted[i] = inputs.scores[i]! >= threshold ? 1 : 0;
  }
  return { ...inputs, predicted, ids, usedThresholds };
}

/** The threshold if every pair used the same one, else null. */
function commonThreshold(used: Float64Array): number | null {
  const first = used[0];
  if (first === undefined) return null;
  return used.every((t) => t === first) ? first : null;
}

function report(pairs: Pairs, withCriteria: boolean): CriterionReport {
  const overall = metricsFromPredictions(
    pairs.labels,
    pairs.scores,
    pairs.predicted,
    commonThreshold(pairs.usedThresholds),
  );
  const criteria = withCriteria ? sortCriterionIds(pairs.ids) : [];
  const perCriterion: Record<string, BinaryMetrics> = {};
  for (const id of criteria) {
    const indices: number[] = [];
    pairs.ids.forEach((value, i) => {
      if (value === id) indices.push(i);
    });
    perCriterion[id] = metricsFromPredictions(
      Uint8Array.from(indices, (i) => pairs.labels[i]!),
      Float64Array.from(indices, (i) => pairs.scores[i]!),
      Uint8Array.from(indices, (i) => pairs.predicted[i]!),
      commonThreshold(Float64Array.from(indices, (i) => pairs.usedThresholds[i]!)),
    );
  }
  const macroF1 =
    criteria.length === 0
      ? NaN
      : criteria.reduce((sum, id) => sum + perCriterion[id]!.f1, 0) / criteria.length;
  return { criteria, perCriterion, macroF1, overall };
}

/**
 * Metrics of each criterion's pairs at its threshold (one number for all, or a record by
 * criterion id), macro-F1 over criteria and the overall (micro) metrics.
 */
export function perCriterionMetrics(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  criterionIds: ArrayLike<string>,
  thresholds: Thresholds,
): CriterionReport {
  return report(classify({ labels, scores, criterionIds, thresholds }, '', true), true);
}

/** Mean F1 over criteria; equals sklearn's f1_score(average="macro") on a pair-indicator matrix. */
export function macroF1(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  criterionIds: ArrayLike<string>,
  thresholds: Thresholds,
): number {
  return perCriterionMetrics(labels, scores, criterionIds, thresholds).macroF1;
}

/**
 * Out-of-fold predictions of all folds pooled: each fold's pairs are classified with that fold's
 * thresholds, then counts are summed and ranking metrics use the pooled scores. Per-criterion
 * metrics and macro-F1 are given when every fold has criterionIds (else `criteria` is empty and
 * macroF1 NaN).
 */
export function pooledMetrics(folds: readonly FoldPredictions[]): PooledMetrics {
  if (folds.length === 0) throw new Error('pooledMetrics needs at least one fold');
  const withCriteria = folds.every((f) => f.criterionIds !== undefined);
  const parts = folds.map((fold, i) => classify(fold, `fold ${i}: `, false));
  const n = parts.reduce((sum, p) => sum + p.labels.length, 0);
  const pooled: Pairs = {
    labels: new Uint8Array(n),
    scores: new Float64Array(n),
    predicted: new Uint8Array(n),
    ids: withCriteria ? parts.flatMap((p) => [...p.ids]) : [],
    usedThresholds: new Float64Array(n),
  };
  let offset = 0;
  for (const part of parts) {
    pooled.labels.set(part.labels, offset);
    pooled.scores.set(part.scores, offset);
    pooled.predicted.set(part.predicted, offset);
    pooled.usedThresholds.set(part.usedThresholds, offset);
    offset += part.labels.length;
  }
  return { ...report(pooled, withCriteria), folds: folds.length };
}

export interface MetricSummary {
  mean: number;
  /** Sample standard deviation (ddof = 1); NaN for a single fold, as numpy gives. */
  std: number;
  min: number;
  max: number;
  n: number;
}

/**
 * Mean, sample std, min and max of each metric across folds. Every fold must report the same
 * metric names. A NaN (e.g. ROC-AUC of a one-class fold) propagates, as in numpy.mean.
 */
export function summarizeAcrossFolds(
  values: readonly Readonly<Record<string, number>>[],
): Record<string, MetricSummary> {
  const first = values[0];
  if (first === undefined) throw new Error('summarizeAcrossFolds needs at least one fold');
  const names = Object.keys(first);
  values.forEach((fold, i) => {
    for (const name of names) {
      if (typeof fold[name] !== 'number') {
        throw new Error(`fold ${i} has no numeric value for metric ${JSON.stringify(name)}`);
      }
    }
    for (const name of Object.keys(fold)) {
      if (!(name in first)) {
        throw new Error(`fold ${i} reports metric ${JSON.stringify(name)} that fold 0 lacks`);
      }
    }
  });
  const summary: Record<string, MetricSummary> = {};
  for (const name of names) {
    const column = values.map((fold) => fold[name]!);
    const n = column.length;
    const mean = column.reduce((a, b) => a + b, 0) / n;
    // Two-pass variance: subtracting the mean first avoids cancellation.
    const squares = column.reduce((a, b) => a + (b - mean) * (b - mean), 0);
    summary[name] = {
      mean,
      std: n > 1 ? Math.sqrt(squares / (n - 1)) : NaN,
      min: Math.min(...column),
      max: Math.max(...column),
      n,
    };
  }
  return summary;
}
