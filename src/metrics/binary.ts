/**
 * Threshold metrics (scikit-learn 1.9 semantics, zero_division="warn" → 0.0) and the one-call
 * `computeBinaryMetrics`. A pair is predicted positive when its score is >= the threshold.
 */
import { rankingMetrics } from './curves.js';
import { validateInputs, validateThreshold } from './validate.js';

/** Counts with sklearn's `confusion_matrix(labels=[0, 1])` layout [[tn, fp], [fn, tp]]. */
export interface ConfusionCounts {
  tn: number;
  fp: number;
  fn: number;
  tp: number;
}

export interface ThresholdMetrics {
  accuracy: number;
  balancedAccuracy: number;
  precision: number;
  recall: number;
  f1: number;
  specificity: number;
  mcc: number;
}

export interface BinaryMetrics extends ThresholdMetrics {
  /** The decision threshold, or null when pooled predictions came from several thresholds. */
  threshold: number | null;
  n: number;
  positives: number;
  negatives: number;
  /** positives / n: the PR curve's chance baseline. */
  prevalence: number;
  predictedPositives: number;
  confusion: ConfusionCounts;
  /** NaN when labels hold one class only (sklearn 1.9 returns NaN with a warning). */
  rocAuc: number;
  averagePrecision: number;
  brier: number;
  /** Metrics that are undefined (NaN) or set to 0 by sklearn's zero_division rule, with why. */
  undefinedReasons: Record<string, string>;
}

/** Names of the numeric fields of BinaryMetrics, the ones MLflow and summaries take. */
export const scalarMetricNames = [
  'accuracy',
  'balancedAccuracy',
  'precision',
  'recall',
  'f1',
  'specificity',
  'mcc',
  'rocAuc',
  'averagePrecision',
  'brier',
  'prevalence',
  'tp',
  'fp',
  'tn',
  'fn',
] as const;
export type ScalarMetricName = (typeof scalarMetricNames)[number];

export function confusionFromPredictions(
  labels: Uint8Array,
  predicted: Uint8Array,
): ConfusionCounts {
  const counts: ConfusionCounts = { tn: 0, fp: 0, fn: 0, tp: 0 };
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === 1) {
      if (predicted[i] === 1) counts.tp++;
      else counts.fn++;
    } else if (predicted[i] === 1) counts.fp++;
    else counts.tn++;
  }
  return counts;
}

/** Predictions at a threshold: 1 when score >= threshold (so threshold 0 predicts all 1). */
export function predictAtThreshold(scores: ArrayLike<number>, threshold: number): Uint8Array {
  const out = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = scores[i]! >= threshold ? 1 : 0;
  return out;
}

/** Threshold metrics from confusion counts, zero_division → 0 with the reason recorded. */
export function thresholdMetricsFromConfusion(
  counts: ConfusionCounts,
  undefinedReasons: Record<string, string> = {},
): ThresholdMetrics {
  const { tn, fp, fn, tp } = counts;
  const n = tn + fp + fn + tp;
  const positives = tp + fn;
  const negatives = tn + fp;
  const divide = (name: string, num: number, den: number, why: string): number => {
    if (den !== 0) return num / den;
    undefinedReasons[name] = `${why}; set to 0.0 (sklearn zero_division="warn")`;
    return 0;
  };
  const precision = divide('precision', tp, tp + fp, 'no predicted positive');
  const recall = divide('recall', tp, positives, 'no positive label');
  // sklearn >= 1.3 computes F1 from counts, so precision = 0 by convention does not leak in.
  const f1 = divide('f1', 2 * tp, 2 * tp + fp + fn, 'no positive label and no predicted positive');
  const specificity = divide('specificity', tn, negatives, 'no negative label');

  // balanced_accuracy_score: mean recall over the classes present in the labels.
  const perClass: number[] = [];
  if (negatives > 0) perClass.push(tn / negatives);
  if (positives > 0) perClass.push(tp / positives);
  const balancedAccuracy = perClass.reduce((a, b) => a + b, 0) / perClass.length;

  // matthews_corrcoef in sklearn's covariance form (same float order), 0 when undefined.
  const trueSums = [negatives, positives];
  const predSums = [tn + fn, fp + tp];
  const nCorrect = tp + tn;
  const covTruePred = nCorrect * n - (trueSums[0]! * predSums[0]! + trueSums[1]! * predSums[1]!);
  const covPredPred = n * n - (predSums[0]! * predSums[0]! + predSums[1]! * predSums[1]!);
  const covTrueTrue = n * n - (trueSums[0]! * trueSums[0]! + trueSums[1]! * trueSums[1]!);
  const covProduct = covPredPred * covTrueTrue;
  let mcc = 0;
  if (covProduct === 0) {
    undefinedReasons.mcc = 'labels or predictions hold one class only; set to 0.0 (as sklearn)';
  } else mcc = covTruePred / Math.sqrt(covProduct);

  return {
    accuracy: nCorrect / n,
    balancedAccuracy,
    precision,
    recall,
    f1,
    specificity,
    mcc,
  };
}

/** Mean squared difference between label and probability (sklearn's `brier_score_loss`). */
export function brierScore(labels: ArrayLike<number>, probabilities: ArrayLike<number>): number {
  const inputs = validateInputs(labels, probabilities, { probabilities: true });
  return brierOf(inputs.labels, inputs.scores);
}

function brierOf(labels: Uint8Array, scores: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const d = labels[i]! - scores[i]!;
    sum += d * d;
  }
  return sum / labels.length;
}

/**
 * Every metric from validated labels, probabilities and 0/1 predictions. The threshold-free
 * ones (ROC-AUC, AP, Brier) come from the scores, the rest from the predictions.
 */
export function metricsFromPredictions(
  labels: Uint8Array,
  scores: Float64Array,
  predicted: Uint8Array,
  threshold: number | null,
): BinaryMetrics {
  const undefinedReasons: Record<string, string> = {};
  const confusion = confusionFromPredictions(labels, predicted);
  const thresholdMetrics = thresholdMetricsFromConfusion(confusion, undefinedReasons);
  const ranking = rankingMetrics(labels, scores);
  Object.assign(undefinedReasons, ranking.undefinedReasons);
  const positives = confusion.tp + confusion.fn;
  return {
    threshold,
    n: labels.length,
    positives,
    negatives: labels.length - positives,
    prevalence: positives / labels.length,
    predictedPositives: confusion.tp + confusion.fp,
    confusion,
    ...thresholdMetrics,
    rocAuc: ranking.rocAuc,
    averagePrecision: ranking.averagePrecision,
    brier: brierOf(labels, scores),
    undefinedReasons,
  };
}

/**
 * All binary metrics at one threshold (predict 1 when score >= threshold). Throws naming the
 * index on a label not 0/1 or a score that is not a finite probability in [0, 1].
 */
export function computeBinaryMetrics(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold: number,
): BinaryMetrics {
  validateThreshold(threshold);
  const inputs = validateInputs(labels, scores, { probabilities: true });
  return metricsFromPredictions(
    inputs.labels,
    inputs.scores,
    predictAtThreshold(inputs.scores, threshold),
    threshold,
  );
}

/** The numeric metrics as a flat record (for MLflow, JSON and `summarizeAcrossFolds`). */
export function metricsToRecord(metrics: BinaryMetrics): Record<ScalarMetricName, number> {
  return {
    accuracy: metrics.accuracy,
    balancedAccuracy: metrics.balancedAccuracy,
    precision: metrics.precision,
    recall: metrics.recall,
    f1: metrics.f1,
    specificity: metrics.specificity,
    mcc: metrics.mcc,
    rocAuc: metrics.rocAuc,
    averagePrecision: metrics.averagePrecision,
    brier: metrics.brier,
    prevalence: metrics.prevalence,
    tp: metrics.confusion.tp,
    fp: metrics.confusion.fp,
    tn: metrics.confusion.tn,
    fn: metrics.confusion.fn,
  };
}
