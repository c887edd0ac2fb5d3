/**
 * The files aggregation and registration write (aggregate.json, thresholds.json, and a registered
 * version's base_model.json), which inference and registration read back.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';

import { Count, Metric, MetricRecord, Nullable, Unit } from './codec.js';
import { AppliedThresholds } from './foldFormats.js';
import { MetricSummary } from './runFormats.js';

export const aggregateSchemaId = 'mentallam.aggregate/v1';
export const thresholdsSchemaId = 'mentallam.thresholds/v1';

const Direction = Type.Union([Type.Literal('max'), Type.Literal('min')]);

/** A fold of the aggregate: the training's result.json entry, or what its artifacts tell. */
export const AggregateFold = Type.Object({
  fold: Count,
  runId: Nullable(Type.String()),
  bestAdapterDir: Nullable(Type.String()),
  bestStep: Nullable(Count),
  steps: Nullable(Count),
  stoppedEarly: Nullable(Type.Boolean()),
  thresholds: AppliedThresholds,
  testMetrics: MetricRecord,
  /** Null when the fold was read from its artifacts (the training's summary was not there). */
  seconds: Nullable(Type.Number()),
});
export type AggregateFold = StaticDecode<typeof AggregateFold>;

/** The fold picked on VALIDATION (the held-out test folds are never used to pick a model). */
export const BestFold = Type.Object({
  fold: Count,
  runId: Nullable(Type.String()),
  /** Config name of the early-stopping metric, e.g. 'f1'. */
  metric: Type.String(),
  mode: Direction,
  selectedOn: Type.Literal('validation'),
  validationValue: Type.Number(),
  /** That fold's test value of the matching metric, for information only. */
  testValue: Nullable(Metric),
});
export type BestFold = StaticDecode<typeof BestFold>;

export const ThresholdStats = Type.Composite([
  MetricSummary,
  Type.Object({ values: Type.Array(Type.Number()) }),
]);
export type ThresholdStats = StaticDecode<typeof ThresholdStats>;

const FoldThresholdEntry = Type.Composite([
  Type.Object({ fold: Count, runId: Nullable(Type.String()) }),
  AppliedThresholds,
]);

export const ThresholdSummary = Type.Object({
  perFold: Type.Array(FoldThresholdEntry),
  global: ThresholdStats,
  perCriterion: Type.Record(Type.String(), ThresholdStats),
});
export type ThresholdSummary = StaticDecode<typeof ThresholdSummary>;

export const CriterionRow = Type.Object({
  criterion: Type.String(),
  f1: Metric,
  precision: Metric,
  recall: Metric,
  averagePrecision: Metric,
  /** Positive pairs of the criterion (pooled over folds). */
  support: Count,
  n: Count,
});
export type CriterionRow = StaticDecode<typeof CriterionRow>;

/** Bin i covers (i/n, (i+1)/n], bin 0 also takes 0 (sklearn's calibration_curve). */
export const CalibrationBin = Type.Object({
  bin: Count,
  lower: Type.Number(),
  upper: Type.Number(),
  count: Count,
  meanPredicted: Type.Number(),
  fractionPositive: Type.Number(),
});
export type CalibrationBin = StaticDecode<typeof CalibrationBin>;

export const Calibration = Type.Object({
  nBins: Count,
  /** Non-empty bins only, as sklearn returns them. */
  bins: Type.Array(CalibrationBin),
  /** Expected calibration error: Σ count/n · |fractionPositive − meanPredicted|. */
  ece: Metric,
  n: Count,
});
export type Calibration = StaticDecode<typeof Calibration>;

export const AggregateChecks = Type.Object({
  /** Each fold's test_f1 recomputed from predictions.json at its thresholds matches metrics.json. */
  foldMetricsReproduced: Type.Boolean(),
  mismatches: Type.Array(
    Type.Object({ fold: Count, metric: Type.String(), reported: Metric, recomputed: Metric }),
  ),
  /** (post, criterion) pairs found in the test part of more than one fold (should be 0). */
  pairsInSeveralTestFolds: Count,
  /** Posts found in the test part of more than one fold (should be 0: folds are grouped by post). */
  postsInSeveralTestFolds: Count,
  /** Posts of a fold's validation split also in its test split (should be 0). */
  validationTestOverlap: Type.Array(Type.Object({ fold: Count, posts: Count })),
  /** Folds whose thresholds.json names another dataset hash than the run. */
  datasetHashMismatches: Type.Array(Count),
  /** Folds the config planned that have no finished artifacts. */
  missingFolds: Type.Array(Count),
});
export type AggregateChecks = StaticDecode<typeof AggregateChecks>;

export const ChildRunLink = Type.Object({
  fold: Count,
  runId: Nullable(Type.String()),
  url: Nullable(Type.String()),
});
export type ChildRunLink = StaticDecode<typeof ChildRunLink>;

/** aggregate.json: every number of the aggregate (schema in docs/aggregation.md). */
export const AggregateSummary = Type.Object({
  schema: Type.Literal(aggregateSchemaId),
  runDir: Nullable(Type.String()),
  parentRunId: Nullable(Type.String()),
  datasetHash: Nullable(Type.String()),
  seed: Nullable(Type.Integer()),
  folds: Type.Array(AggregateFold),
  /** Pooled out-of-fold metrics, each fold at its own per-criterion thresholds. */
  pooled: MetricRecord,
  pooledPerCriterion: Type.Record(Type.String(), MetricRecord),
  /** Mean, sample std (ddof 1), min, max of every test_* / threshold_* metric across folds. */
  acrossFolds: Type.Record(Type.String(), MetricSummary),
  /** Training wall time from the training's summary (null when it never finished). */
  seconds: Nullable(Type.Number()),
  aggregatedAt: Type.String(),
  source: Type.Union([Type.Literal('run-dir'), Type.Literal('mlflow')]),
  trackingUri: Nullable(Type.String()),
  experimentId: Nullable(Type.String()),
  configHash: Type.String({ pattern: '^sha256:[0-9a-f]{64}$' }),
  foldsAggregated: Type.Array(Count),
  /** Every planned fold is present. */
  complete: Type.Boolean(),
  /** The best fold's index (what `mentallam infer --run` uses); null when none has a validation score. */
  bestFold: Nullable(Count),
  bestFoldSelection: Nullable(BestFold),
  thresholdSummary: ThresholdSummary,
  perCriterion: Type.Array(CriterionRow),
  calibration: Calibration,
  checks: AggregateChecks,
  childRuns: Type.Array(ChildRunLink),
  /** Metrics some folds lack (not summarised). */
  partialMetricKeys: Type.Array(Type.String()),
  warnings: Type.Array(Type.String()),
});
export type AggregateSummary = StaticDecode<typeof AggregateSummary>;

/** The best fold's own thresholds and how the fold was picked. */
export const BestFoldThresholds = Type.Composite([
  Type.Object({ fold: Count, runId: Nullable(Type.String()) }),
  AppliedThresholds,
  Type.Object({
    selection: Type.Object({
      metric: Type.String(),
      mode: Direction,
      on: Type.Literal('validation'),
      value: Type.Number(),
    }),
  }),
]);
export type BestFoldThresholds = StaticDecode<typeof BestFoldThresholds>;

/**
 * thresholds.json, read by `mentallam infer` (its top-level `global` / `perCriterion`). The
 * run-level file serves the fold ensemble (`source: 'fold_mean'`); the copy registered beside the
 * best fold's adapter serves that adapter (`source: 'best_fold'`). Both carry both tables.
 */
export const InferenceThresholds = Type.Object({
  schema: Type.Literal(thresholdsSchemaId),
  /** Predict 1 when probability >= threshold. */
  decisionRule: Type.Literal('score >= threshold'),
  source: Type.Union([Type.Literal('fold_mean'), Type.Literal('best_fold')]),
  global: Unit,
  perCriterion: Type.Record(Type.String(), Unit),
  bestFold: Nullable(BestFoldThresholds),
  /** Per criterion the mean over folds of (its threshold, else the fold's global one). */
  foldMean: Type.Object({
    global: Unit,
    perCriterion: Type.Record(Type.String(), Unit),
    note: Type.String(),
  }),
  folds: Type.Array(FoldThresholdEntry),
  acrossFolds: Type.Object({
    global: ThresholdStats,
    perCriterion: Type.Record(Type.String(), ThresholdStats),
  }),
  provenance: Type.Object({
    parentRunId: Nullable(Type.String()),
    childRunIds: Type.Record(Type.String(), Nullable(Type.String())),
    bestFold: Nullable(Count),
    bestFoldRunId: Nullable(Type.String()),
    datasetHash: Nullable(Type.String()),
    /** sha256 of the run's config.yaml bytes. */
    configHash: Type.String({ pattern: '^sha256:[0-9a-f]{64}$' }),
    baseModel: Type.Object({ name: Nullable(Type.String()), path: Nullable(Type.String()) }),
    trackingUri: Nullable(Type.String()),
    mentallamVersion: Type.String(),
    /** ISO 8601. */
    createdAt: Type.String(),
  }),
});
export type InferenceThresholds = StaticDecode<typeof InferenceThresholds>;

/**
 * What inference needs of any thresholds file (a fold's, the run-level one, a registered copy):
 * a global threshold and optional per-criterion ones, all in [0, 1].
 */
export const ThresholdTableFile = Type.Object({
  global: Unit,
  perCriterion: Type.Optional(Type.Record(Type.String(), Unit)),
});
export type ThresholdTableFile = StaticDecode<typeof ThresholdTableFile>;

/** base_model.json beside a registered adapter: the adapter is usable only on this base. */
export const BaseModelFile = Type.Object({
  name: Nullable(Type.String()),
  path: Nullable(Type.String()),
  adapterFormat: Type.String(),
  parentRunId: Type.String(),
  fold: Count,
  foldRunId: Type.String(),
  datasetHash: Nullable(Type.String()),
  configHash: Type.String(),
});
export type BaseModelFile = StaticDecode<typeof BaseModelFile>;
