/**
 * The run-level files training writes (manifest.json, folds/fold_{i}.json, summary.json,
 * run-state.json). The manifest and split files keep the data module's own types; the checks at
 * the bottom make tsc fail when a schema here and that type disagree.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';

import type { DatasetManifest, FoldFile } from '../data/index.js';
import { Count, Metric, MetricRecord, Nullable } from './codec.js';
import { FoldResult } from './foldFormats.js';

const Stats = Type.Object({ min: Metric, p50: Metric, p95: Metric, max: Metric, mean: Metric });

const DatasetManifestSchema = Type.Object({
  source: Type.Union([Type.Literal('annotations'), Type.Literal('pairs')]),
  files: Type.Array(Type.String()),
  counts: Type.Object({
    posts: Count,
    criteria: Count,
    pairs: Count,
    positivePairs: Count,
    annotationRows: Count,
    status0Rows: Count,
  }),
  expectedCounts: Type.Object({ posts: Count, criteria: Count, pairs: Count }),
  positivesPerCriterion: Type.Array(
    Type.Object({
      id: Type.String(),
      // The symptom names are the data module's to check; here a string.
      symptom: Type.String(),
      positives: Count,
    }),
  ),
  specialCaseRows: Count,
  postsWithoutSymptoms: Count,
  textLength: Type.Object({ chars: Stats, words: Stats }),
  countOverrideReason: Nullable(Type.String()),
  hashFormat: Type.String(),
  hash: Type.String(),
});

/** manifest.json: the data set's manifest plus what only tokenization can tell. */
export const ManifestFile = Type.Composite([
  DatasetManifestSchema,
  Type.Object({
    tokenization: Type.Object({
      maxLength: Count,
      truncation: Type.String(),
      truncatedPairs: Count,
      truncationRate: Metric,
      tokenizerHash: Type.String(),
    }),
  }),
]);
export type ManifestFile = StaticDecode<typeof ManifestFile>;

const SplitPart = Type.Object({
  n_posts: Count,
  n_pairs: Count,
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  post_ids: Type.Array(Type.String()),
});

/** folds/fold_{i}.json: which posts are in the fold's train, validation and test parts. */
export const SplitFile = Type.Object({
  fold: Count,
  n_splits: Count,
  seed: Type.Integer(),
  stratification: Type.String(),
  inner_validation: Type.Object({
    method: Type.String(),
    fraction: Type.Number(),
    n_splits: Count,
  }),
  dataset_hash: Type.String(),
  count_override_reason: Nullable(Type.String()),
  train: SplitPart,
  validation: SplitPart,
  test: SplitPart,
});
export type SplitFile = StaticDecode<typeof SplitFile>;

/** A fold stopped by a NaN/Inf training loss; the other folds still ran. */
export const FailedFold = Type.Object({
  fold: Count,
  step: Count,
  runId: Nullable(Type.String()),
  message: Type.String(),
});
export type FailedFold = StaticDecode<typeof FailedFold>;

/** Mean, sample std (ddof 1; NaN for one fold), min and max of a metric across folds. */
export const MetricSummary = Type.Object({
  mean: Metric,
  std: Metric,
  min: Metric,
  max: Metric,
  n: Count,
});

/** summary.json: what training leaves (aggregation writes aggregate.json beside it). */
export const TrainingSummary = Type.Object({
  runDir: Type.String(),
  parentRunId: Nullable(Type.String()),
  datasetHash: Type.String(),
  seed: Type.Integer(),
  /** The folds that finished; pooled and across-fold metrics cover these only. */
  folds: Type.Array(FoldResult),
  /** Folds stopped by a NaN/Inf loss (empty when all finished). */
  failedFolds: Type.Array(FailedFold),
  /** Out-of-fold metrics of all finished folds, each fold at its own per-criterion thresholds. */
  pooled: MetricRecord,
  pooledPerCriterion: Type.Record(Type.String(), MetricRecord),
  acrossFolds: Type.Record(Type.String(), MetricSummary),
  seconds: Type.Number({ minimum: 0 }),
});
export type TrainingSummary = StaticDecode<typeof TrainingSummary>;

/**
 * run-state.json. A fold's status says how a resume goes on with it: 'done' is read back;
 * 'interrupted' (Ctrl-C: a checkpoint was saved at `checkpointStep`) continues from the checkpoint
 * in the same tracking run; 'running' (the process died without a checkpoint: kill -9, a crash)
 * and 'failed' (NaN/Inf loss) start again from step 0 in a new tracking run.
 */
export const RunState = Type.Object({
  parentRunId: Nullable(Type.String()),
  /** Fold index -> its child run id and status. */
  folds: Type.Record(
    Type.String(),
    Type.Object({
      runId: Nullable(Type.String()),
      status: Type.Union([
        Type.Literal('running'),
        Type.Literal('interrupted'),
        Type.Literal('done'),
        Type.Literal('failed'),
      ]),
      /** 'interrupted': the step its checkpoint holds. */
      checkpointStep: Type.Optional(Count),
      error: Type.Optional(Type.String()),
    }),
  ),
});
export type RunState = StaticDecode<typeof RunState>;

/** True when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Loose<T> = Omit<T, 'positivesPerCriterion'> & {
  positivesPerCriterion: { id: string; symptom: string; positives: number }[];
};
const _manifestMatchesData: Same<
  Loose<DatasetManifest>,
  StaticDecode<typeof DatasetManifestSchema>
> = true;
const _splitFileMatchesData: Same<FoldFile, SplitFile> = true;
