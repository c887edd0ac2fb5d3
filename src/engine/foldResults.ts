/**
 * What the recipe keeps of each fold (its result, and for pooling its thresholds and test
 * scores), how a resumed run reads a finished fold back, and the run's metrics over the finished
 * folds: pooled out-of-fold (each fold at its own thresholds) and mean ± std across folds.
 */
import type { Dataset, Fold } from '../data/index.js';
import {
  headlineMetricKeys,
  pooledMetrics,
  pooledPerCriterionRecord,
  pooledRecord,
  summarizeAcrossFolds,
} from '../metrics/index.js';
import type { FailedFold, FoldResult, FoldStore, TrainingSummary } from '../run/index.js';

/** A fold that finished. */
export interface FinishedFold {
  fold: Fold;
  result: FoldResult;
  /** Criterion -> the threshold the fold applied. */
  thresholds: Record<string, number>;
  /** Test scores in fold.test order. */
  scores: Float32Array;
}

export type FoldOutcome = FinishedFold | { failed: FailedFold };

/** A fold a previous (interrupted) invocation finished, read back from its files. */
export async function readFinishedFold(files: FoldStore, fold: Fold): Promise<FinishedFold> {
  const predictions = await files.predictions.read();
  if (predictions.test.length !== fold.test.length) {
    throw new Error(
      `${files.predictions.path} has ${predictions.test.length} test pairs, the fold has ${fold.test.length}: the data or splits changed since the run started`,
    );
  }
  return {
    fold,
    result: await files.result.read(),
    thresholds: (await files.thresholds.read()).perCriterion,
    scores: Float32Array.from(predictions.test, (row) => row.score),
  };
}

/** Pooled and across-fold metrics of the finished folds (the headline metrics are summarised). */
export function runMetrics(
  dataset: Pick<Dataset, 'pairs'>,
  finished: readonly FinishedFold[],
): Pick<TrainingSummary, 'pooled' | 'pooledPerCriterion' | 'acrossFolds'> {
  const pooled = pooledMetrics(
    finished.map(({ fold, scores, thresholds }) => ({
      labels: fold.test.map((i) => dataset.pairs[i]!.label),
      scores,
      criterionIds: fold.test.map((i) => dataset.pairs[i]!.criterionId),
      thresholds,
    })),
  );
  return {
    pooled: pooledRecord(pooled),
    pooledPerCriterion: pooledPerCriterionRecord(pooled),
    acrossFolds: summarizeAcrossFolds(
      finished.map(({ result }) =>
        Object.fromEntries(
          headlineMetricKeys.map((key) => [key, result.testMetrics[key] ?? Number.NaN]),
        ),
      ),
    ),
  };
}
