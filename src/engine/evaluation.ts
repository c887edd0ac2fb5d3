/**
 * Turning predictions into the numbers a fold reports: the validation score that drives early
 * stopping, tuned thresholds, and test metrics at the tuned thresholds and at 0.5.
 */
import {
  computeBinaryMetrics,
  metricsToRecord,
  perCriterionMetrics,
  precisionRecallCurve,
  rocCurve,
  thresholdSweep,
  tuneThresholds,
  type CriterionReport,
  type TunedThresholds,
} from '../metrics/index.js';
import type { EarlyStoppingMetric } from '../config/index.js';

/** camelCase metric names -> snake_case MLflow keys (balancedAccuracy -> balanced_accuracy). */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export function snakeCaseRecord(
  record: Record<string, number>,
  prefix = '',
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [`${prefix}${snakeCase(key)}`, value]),
  );
}

/** Mean binary cross-entropy of probabilities, clamped like sklearn's log_loss. */
export function logLoss(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const epsilon = 1e-7;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - epsilon, Math.max(epsilon, scores[i]!));
    sum += labels[i] === 1 ? -Math.log(p) : -Math.log(1 - p);
  }
  return labels.length === 0 ? Number.NaN : sum / labels.length;
}

/**
 * The early-stopping value on validation predictions. Threshold-dependent metrics are taken at
 * the F1-optimal threshold of the same validation set: the number the fold would report if it
 * stopped here.
 */
export function validationScore(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  metric: EarlyStoppingMetric,
): { value: number; metrics: Record<string, number> } {
  const sweep = thresholdSweep(labels, scores, { grid: 'fixed' });
  const atTuned = metricsToRecord(computeBinaryMetrics(labels, scores, sweep.threshold));
  const metrics: Record<string, number> = {
    ...snakeCaseRecord(atTuned),
    threshold: sweep.threshold,
    loss: logLoss(labels, scores),
  };
  const key: Record<EarlyStoppingMetric, string> = {
    f1: 'f1',
    loss: 'loss',
    auprc: 'average_precision',
    roc_auc: 'roc_auc',
    mcc: 'mcc',
    balanced_accuracy: 'balanced_accuracy',
    accuracy: 'accuracy',
  };
  const value = metrics[key[metric]];
  return { value: value === undefined ? Number.NaN : value, metrics };
}

export interface FoldTestReport {
  thresholds: TunedThresholds;
  /** Each pair classified with its criterion's tuned threshold. */
  tuned: CriterionReport;
  /** Each pair classified with the global tuned threshold. */
  globalThreshold: CriterionReport;
  /** Each pair classified at 0.5. */
  atHalf: CriterionReport;
  /** Flat metrics for tracking: test_*, test_at_0_5_*, test_global_*, per criterion test_A1_f1 ... */
  flat: Record<string, number>;
  curves: { pr: ReturnType<typeof precisionRecallCurve>; roc: ReturnType<typeof rocCurve> };
}

export function tuneOnValidation(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  criterionIds: ArrayLike<string>,
  minPositives: number,
): TunedThresholds {
  return tuneThresholds(labels, scores, criterionIds, { grid: 'fixed', minPositives });
}

export function reportTest(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  criterionIds: ArrayLike<string>,
  thresholds: TunedThresholds,
): FoldTestReport {
  const tuned = perCriterionMetrics(labels, scores, criterionIds, thresholds.thresholds);
  const globalThreshold = perCriterionMetrics(
    labels,
    scores,
    criterionIds,
    thresholds.global.threshold,
  );
  const atHalf = perCriterionMetrics(labels, scores, criterionIds, 0.5);
  const flat: Record<string, number> = {
    ...snakeCaseRecord(metricsToRecord(tuned.overall), 'test_'),
    test_macro_f1: tuned.macroF1,
    ...snakeCaseRecord(metricsToRecord(globalThreshold.overall), 'test_global_'),
    ...snakeCaseRecord(metricsToRecord(atHalf.overall), 'test_at_0_5_'),
    test_at_0_5_macro_f1: atHalf.macroF1,
    threshold_global: thresholds.global.threshold,
  };
  for (const id of tuned.criteria) {
    const criterion = tuned.perCriterion[id]!;
    flat[`test_${id}_f1`] = criterion.f1;
    flat[`test_${id}_precision`] = criterion.precision;
    flat[`test_${id}_recall`] = criterion.recall;
    flat[`test_${id}_average_precision`] = criterion.averagePrecision;
    flat[`threshold_${id}`] = thresholds.thresholds[id]!;
  }
  return {
    thresholds,
    tuned,
    globalThreshold,
    atHalf,
    flat,
    curves: { pr: precisionRecallCurve(labels, scores), roc: rocCurve(labels, scores) },
  };
}
