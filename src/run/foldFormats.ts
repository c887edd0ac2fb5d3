/**
 * The files of one fold (fold_{i}/ in a run directory, the same names in the fold's MLflow child
 * run): schema and type in one declaration each.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';

import { Count, Metric, MetricRecord, Nullable, Unit } from './codec.js';

/** One scored (post, criterion) pair: identity, label and score only, never post text. */
export const PredictionRow = Type.Object(
  {
    postId: Type.String(),
    criterionId: Type.String(),
    label: Type.Union([Type.Literal(0), Type.Literal(1)]),
    score: Unit,
  },
  { additionalProperties: false },
);
export type PredictionRow = StaticDecode<typeof PredictionRow>;

/** fold_{i}/predictions.json. */
export const PredictionsFile = Type.Object({
  fold: Count,
  test: Type.Array(PredictionRow),
  validation: Type.Array(PredictionRow),
});
export type PredictionsFile = StaticDecode<typeof PredictionsFile>;

/** How one criterion's threshold was tuned on the fold's validation part. */
const CriterionThreshold = Type.Object({
  threshold: Unit,
  f1: Metric,
  positives: Count,
  n: Count,
  source: Type.Union([Type.Literal('criterion'), Type.Literal('global')]),
});

/** fold_{i}/thresholds.json: tuned on the inner validation part, applied to the test fold. */
export const FoldThresholdsFile = Type.Object({
  global: Unit,
  perCriterion: Type.Record(Type.String(), Unit),
  /** Criteria with too few validation positives, which use the global threshold. */
  fellBack: Type.Array(Type.String()),
  minPositives: Count,
  detail: Type.Record(Type.String(), CriterionThreshold),
  datasetHash: Type.String(),
  fold: Count,
});
export type FoldThresholdsFile = StaticDecode<typeof FoldThresholdsFile>;

/** One validation evaluation: its metrics, the early-stopping value, the mean train loss since the last one. */
export const EvaluationEntry = Type.Object({
  step: Count,
  value: Metric,
  trainLoss: Type.Optional(Metric),
  metrics: MetricRecord,
});
export type EvaluationEntry = StaticDecode<typeof EvaluationEntry>;

/** fold_{i}/metrics.json. */
export const FoldMetricsFile = Type.Object({
  /** test_*, test_global_*, test_at_0_5_*, test_<criterion>_*, threshold_*. */
  test: MetricRecord,
  confusionMatrix: Type.Object({ tn: Count, fp: Count, fn: Count, tp: Count }),
  bestStep: Count,
  /** The early-stopping metric on the inner validation split at the best step. */
  bestValidation: Nullable(Type.Number()),
  steps: Count,
  stoppedEarly: Type.Boolean(),
  validationHistory: Type.Array(EvaluationEntry),
});
export type FoldMetricsFile = StaticDecode<typeof FoldMetricsFile>;

const Curve = Type.Array(Metric);

/** fold_{i}/curves.json: the test fold's PR and ROC curves (sklearn's shapes). */
export const CurvesFile = Type.Object({
  pr: Type.Object({ precision: Curve, recall: Curve, thresholds: Curve }),
  roc: Type.Object({ fpr: Curve, tpr: Curve, thresholds: Curve }),
});
export type CurvesFile = StaticDecode<typeof CurvesFile>;

/** The thresholds a fold applied (its thresholds.json without the tuning detail). */
export const AppliedThresholds = Type.Object({
  global: Unit,
  perCriterion: Type.Record(Type.String(), Unit),
  fellBack: Type.Array(Type.String()),
});

/** fold_{i}/result.json, and the fold's entry in summary.json. */
export const FoldResult = Type.Object({
  fold: Count,
  /** The fold's MLflow child run; null without tracking. */
  runId: Nullable(Type.String()),
  bestAdapterDir: Type.String(),
  bestStep: Count,
  steps: Count,
  stoppedEarly: Type.Boolean(),
  thresholds: AppliedThresholds,
  testMetrics: MetricRecord,
  seconds: Type.Number({ minimum: 0 }),
});
export type FoldResult = StaticDecode<typeof FoldResult>;

/** Early stopping's state (saved in a checkpoint so a resume continues it). */
export const EarlyStoppingState = Type.Object({
  best: Nullable(Type.Number()),
  bestStep: Nullable(Count),
  evaluationsWithoutImprovement: Count,
});
export type EarlyStoppingState = StaticDecode<typeof EarlyStoppingState>;

/** fold_{i}/checkpoint/trainer_state.json: what an interrupted fold needs to continue exactly. */
export const FoldCheckpointState = Type.Object({
  step: Count,
  epoch: Count,
  /** Index into the epoch's batch plan of the next micro-batch group. */
  nextBatch: Count,
  /** RNG draws made before this epoch's plan (the plan is rebuilt from them). */
  rngDrawsAtEpochStart: Count,
  earlyStopping: EarlyStoppingState,
  bestStep: Count,
  history: Type.Array(EvaluationEntry),
  lossSinceEvaluation: Type.Object({ sum: Metric, count: Count }),
});
export type FoldCheckpointState = StaticDecode<typeof FoldCheckpointState>;
