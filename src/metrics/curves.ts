/**
 * Threshold-free ranking metrics and curves with scikit-learn 1.9 semantics
 * (`sklearn.metrics.roc_curve`, `precision_recall_curve`, `roc_auc_score`,
 * `average_precision_score`, `auc`). docs/metrics.md lists every convention matched.
 */
import { validateInputs } from './validate.js';

/** Confusion counts at every distinct score, thresholds in decreasing order (sklearn's
 * `confusion_matrix_at_thresholds` / `_binary_clf_curve`). */
export interface CountsAtThresholds {
  thresholds: Float64Array;
  tps: Float64Array;
  fps: Float64Array;
}

export interface RocCurve {
  /** False-positive rate, increasing; all NaN when labels hold no negative (as sklearn). */
  fpr: number[];
  /** True-positive rate, increasing; all NaN when labels hold no positive (as sklearn). */
  tpr: number[];
  /** Decreasing; the first is +Infinity (sklearn >= 1.3), so the curve starts at (0, 0). */
  thresholds: number[];
}

export interface PrCurve {
  /** Precision per threshold then a final 1 (the point recall = 0). */
  precision: number[];
  /** Recall, decreasing, then a final 0; all 1 when labels hold no positive (as sklearn). */
  recall: number[];
  /** Increasing distinct scores; one fewer entry than precision / recall. */
  thresholds: number[];
}

export interface CurveOptions {
  /** Drop points that do not change the curve's shape; sklearn's defaults are true for ROC and
   * false for PR. */
  dropIntermediate?: boolean;
}

/** Counts of predicted positives at each distinct score when predicting 1 for score >= it. */
export function countsAtThresholds(labels: Uint8Array, scores: Float64Array): CountsAtThresholds {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
  const thresholds: number[] = [];
  const tps: number[] = [];
  const fps: number[] = [];
  let truePositives = 0;
  for (let rank = 0; rank < order.length; rank++) {
    const index = order[rank]!;
    truePositives += labels[index]!;
    const next = order[rank + 1];
    // One point per distinct score: ties enter the positive set together.
    if (next === undefined || scores[next] !== scores[index]) {
      thresholds.push(scores[index]!);
      tps.push(truePositives);
      fps.push(rank + 1 - truePositives);
    }
  }
  return {
    thresholds: Float64Array.from(thresholds),
    tps: Float64Array.from(tps),
    fps: Float64Array.from(fps),
  };
}

function keepIndices(keep: boolean[]): number[] {
  const out: number[] = [];
  keep.forEach((k, i) => {
    if (k) out.push(i);
  });
  return out;
}

/** sklearn's `roc_curve(y_true, y_score, drop_intermediate=True)`. */
export function rocCurve(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: CurveOptions = {},
): RocCurve {
  const inputs = validateInputs(labels, scores);
  return rocCurveOfCounts(countsAtThresholds(inputs.labels, inputs.scores), options);
}

function rocCurveOfCounts(counts: CountsAtThresholds, options: CurveOptions): RocCurve {
  const { dropIntermediate = true } = options;
  let fps = Array.from(counts.fps);
  let tps = Array.from(counts.tps);
  let thresholds = Array.from(counts.thresholds);
  if (dropIntermediate && fps.length > 2) {
    // A point is kept when the second difference of fps or tps is nonzero there, i.e. the curve
    // bends; collinear interior points carry no area information.
    const keep = fps.map((_, i) => {
      if (i === 0 || i === fps.length - 1) return true;
      const bendF = fps[i + 1]! - 2 * fps[i]! + fps[i - 1]!;
      const bendT = tps[i + 1]! - 2 * tps[i]! + tps[i - 1]!;
      return bendF !== 0 || bendT !== 0;
    });
    const idx = keepIndices(keep);
    fps = idx.map((i) => fps[i]!);
    tps = idx.map((i) => tps[i]!);
    thresholds = idx.map((i) => thresholds[i]!);
  }
  fps.unshift(0);
  tps.unshift(0);
  thresholds.unshift(Infinity);
  const negatives = fps[fps.length - 1]!;
  const positives = tps[tps.length - 1]!;
  return {
    fpr: fps.map((f) => (negatives > 0 ? f / negatives : NaN)),
    tpr: tps.map((t) => (positives > 0 ? t / positives : NaN)),
    thresholds,
  };
}

/** sklearn's `precision_recall_curve(y_true, y_score, drop_intermediate=False)`. */
export function precisionRecallCurve(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  options: CurveOptions = {},
): PrCurve {
  const inputs = validateInputs(labels, scores);
  return prCurveOfCounts(countsAtThresholds(inputs.labels, inputs.scores), options);
}

function prCurveOfCounts(counts: CountsAtThresholds, options: CurveOptions): PrCurve {
  const { dropIntermediate = false } = options;
  let fps = Array.from(counts.fps);
  let tps = Array.from(counts.tps);
  let thresholds = Array.from(counts.thresholds);
  if (dropIntermediate && fps.length > 2) {
    // Keep the first and last point of each run of equal tps (equal recall): the rest lie on
    // the same vertical segment of the plot.
    const keep = tps.map(
      (t, i) => i === 0 || i === tps.length - 1 || t !== tps[i - 1] || tps[i + 1] !== t,
    );
    const idx = keepIndices(keep);
    fps = idx.map((i) => fps[i]!);
    tps = idx.map((i) => tps[i]!);
    thresholds = idx.map((i) => thresholds[i]!);
  }
  const positives = tps[tps.length - 1]!;
  const precision = tps.map((t, i) => {
    const predicted = t + fps[i]!;
    return predicted !== 0 ? t / predicted : 0;
  });
  // sklearn sets recall to 1 everywhere when there is no positive (and warns).
  const recall = tps.map((t) => (positives === 0 ? 1 : t / positives));
  return {
    precision: [...precision.reverse(), 1],
    recall: [...recall.reverse(), 0],
    thresholds: thresholds.reverse(),
  };
}

/** Trapezoidal area under a monotonic curve (sklearn's `auc`); throws if x is not monotonic. */
export function auc(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`auc: x has ${x.length} points, y has ${y.length}`);
  if (x.length < 2) throw new Error(`auc: at least 2 points are needed, got ${x.length}`);
  let increasing = true;
  let decreasing = true;
  for (let i = 1; i < x.length; i++) {
    const dx = x[i]! - x[i - 1]!;
    if (dx < 0) increasing = false;
    if (dx > 0) decreasing = false;
  }
  if (!increasing && !decreasing) throw new Error('auc: x is neither increasing nor decreasing');
  const direction = increasing ? 1 : -1;
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i]! - x[i - 1]!) * (y[i]! + y[i - 1]!)) / 2;
  return direction * area;
}

export interface RankingMetrics {
  rocAuc: number;
  averagePrecision: number;
  roc: RocCurve;
  pr: PrCurve;
  /** Why a metric is undefined or set by convention, keyed by metric name. */
  undefinedReasons: Record<string, string>;
}

export const noPositiveReason =
  'labels hold no positive; ROC-AUC is undefined (NaN, as sklearn 1.9 returns with an ' +
  'UndefinedMetricWarning) and average precision is 0 (sklearn sets recall to 1 everywhere)';
export const noNegativeReason =
  'labels hold no negative; ROC-AUC is undefined (NaN, as sklearn 1.9 returns with an ' +
  'UndefinedMetricWarning)';

/** ROC-AUC, average precision and both curves from one sort; inputs already validated. */
export function rankingMetrics(labels: Uint8Array, scores: Float64Array): RankingMetrics {
  const counts = countsAtThresholds(labels, scores);
  const roc = rocCurveOfCounts(counts, {});
  const pr = prCurveOfCounts(counts, {});
  const positives = counts.tps[counts.tps.length - 1]!;
  const negatives = counts.fps[counts.fps.length - 1]!;
  const undefinedReasons: Record<string, string> = {};
  let rocAuc = NaN;
  if (positives === 0) {
    undefinedReasons.rocAuc = noPositiveReason;
    undefinedReasons.averagePrecision = noPositiveReason;
  } else if (negatives === 0) {
    undefinedReasons.rocAuc = noNegativeReason;
  } else {
    rocAuc = auc(roc.fpr, roc.tpr);
  }
  return { rocAuc, averagePrecision: averagePrecisionOfCurve(pr), roc, pr, undefinedReasons };
}

function averagePrecisionOfCurve(pr: PrCurve): number {
  // AP = sum_n (R_n - R_{n-1}) P_n over thresholds, no interpolation. Recall decreases along the
  // arrays, so each step is -(recall[i+1] - recall[i]) * precision[i]; clipped at 0 as sklearn
  // does for a -0.0 from rounding.
  let sum = 0;
  for (let i = 0; i + 1 < pr.recall.length; i++) {
    sum += (pr.recall[i + 1]! - pr.recall[i]!) * pr.precision[i]!;
  }
  return Math.max(0, -sum);
}

/** sklearn's `roc_auc_score` for binary labels: NaN when only one class is present. */
export function rocAucScore(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const inputs = validateInputs(labels, scores);
  return rankingMetrics(inputs.labels, inputs.scores).rocAuc;
}

/** sklearn's `average_precision_score` (step-wise, not interpolated); 0 with no positive. */
export function averagePrecisionScore(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
): number {
  const inputs = validateInputs(labels, scores);
  return averagePrecisionOfCurve(
    prCurveOfCounts(countsAtThresholds(inputs.labels, inputs.scores), {}),
  );
}
