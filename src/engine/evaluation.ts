/**
 * Evaluation: turning predictions into the numbers a fold reports. The validation score that
 * drives early stopping; after training, the best adapter restored, thresholds tuned on the inner
 * validation part, and the held-out test fold scored once, at the tuned thresholds, the global
 * threshold and 0.5.
 */
import type { EarlyStoppingMetric } from '../config/index.js';
import type { Fold } from '../data/index.js';
import {
  computeBinaryMetrics,
  metricsToRecord,
  perCriterionMetrics,
  precisionRecallCurve,
  rocCurve,
  selectionMetricKeys,
  snakeCaseRecord,
  thresholdSweep,
  tuneThresholds,
  type CriterionReport,
  type TunedThresholds,
} from '../metrics/index.js';
import type { TokenizedExamples } from './examples.js';
import type { FrozenRows } from './frozenCache.js';
import { predictIndices, type FoldModel, type FoldTrainingOptions } from './foldTrainer.js';

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
  const value = metrics[selectionMetricKeys[metric].validation];
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

/** What scoring a trained fold gives: the tuned thresholds, the test report and both score sets. */
export interface FoldEvaluation {
  thresholds: TunedThresholds;
  report: FoldTestReport;
  validationScores: Float32Array;
  testScores: Float32Array;
}

/** A criterion needs this many validation positives for a threshold of its own. */
export const minPositivesPerCriterion = 10;

/**
 * Restores the best adapter, tunes thresholds on the fold's validation part and scores its test
 * part once with them: the held-out fold is never used for a decision.
 */
export async function evaluateFold(
  model: FoldModel,
  bestAdapterDir: string,
  fold: Fold,
  pairs: {
    examples: TokenizedExamples;
    labels: Uint8Array;
    criterionIds: readonly string[];
    frozen?: FrozenRows | null;
  },
  options: Pick<
    FoldTrainingOptions,
    'inferenceBatchSize' | 'padTokenId' | 'paddingSide' | 'sharedPrefix'
  >,
): Promise<FoldEvaluation> {
  const labelsOf = (indices: number[]) => indices.map((i) => pairs.labels[i]!);
  const criteriaOf = (indices: number[]) => indices.map((i) => pairs.criterionIds[i]!);
  await model.loadAdapter(bestAdapterDir);
  const validationScores = await predictIndices(
    model,
    pairs.examples,
    fold.validation,
    options,
    pairs.frozen,
  );
  const thresholds = tuneOnValidation(
    labelsOf(fold.validation),
    validationScores,
    criteriaOf(fold.validation),
    minPositivesPerCriterion,
  );
  const testScores = await predictIndices(model, pairs.examples, fold.test, options, pairs.frozen);
  const report = reportTest(labelsOf(fold.test), testScores, criteriaOf(fold.test), thresholds);
  return { thresholds, report, validationScores, testScores };
}
