/**
 * Builds the aggregate documents from fold artifacts: aggregate.json and the inference
 * thresholds.json (formats in the run store; described in docs/aggregation.md).
 */
import { readFileSync } from 'node:fs';
import { pooledPerCriterionRecord, pooledRecord } from '../metrics/index.js';
import {
  aggregateSchemaId,
  fileFormats,
  thresholdsSchemaId,
  type AggregateSummary,
  type BestFoldThresholds,
  type InferenceThresholds,
  type ThresholdSummary,
} from '../run/index.js';
import {
  calibrationCurve,
  checkFolds,
  checkWarnings,
  configHash,
  criterionRows,
  poolFolds,
  selectBestFold,
  summarizeFoldMetrics,
  summarizeThresholds,
} from './compute.js';
import type { RunSource } from './types.js';

export type { AggregateSummary, BestFoldThresholds, InferenceThresholds } from '../run/index.js';

/** The `schema` of aggregate.json and of thresholds.json. */
export const summarySchema = aggregateSchemaId;
export const thresholdsSchema = thresholdsSchemaId;

export function mentallamVersion(): string {
  try {
    const path = new URL('../../package.json', import.meta.url);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** `<uri>/#/experiments/<exp>/runs/<id>`: the MLflow UI page of a run. */
export function runUrl(
  trackingUri: string | null,
  experimentId: string | null,
  runId: string | null,
): string | null {
  if (trackingUri === null || experimentId === null || runId === null) return null;
  return `${trackingUri.replace(/\/+$/, '')}/#/experiments/${experimentId}/runs/${runId}`;
}

function plannedFolds(source: RunSource): number[] {
  if (source.config.plannedFolds !== null) return [...source.config.plannedFolds];
  if (source.config.nSplits !== null)
    return Array.from({ length: source.config.nSplits }, (_, i) => i);
  return source.folds.map((fold) => fold.fold);
}

/** Every number of the aggregate from the fold artifacts. Throws when there is no fold at all. */
export function buildSummary(source: RunSource, now: Date = new Date()): AggregateSummary {
  const folds = [...source.folds].sort((a, b) => a.fold - b.fold);
  if (folds.length === 0)
    throw new Error(
      `No finished fold to aggregate${source.warnings.length > 0 ? `: ${source.warnings.join('; ')}` : ''}`,
    );
  const pooled = poolFolds(folds);
  const { acrossFolds, partialKeys } = summarizeFoldMetrics(folds);
  const planned = plannedFolds(source);
  const checks = checkFolds(folds, { datasetHash: source.datasetHash, plannedFolds: planned });
  const warnings = [...source.warnings, ...checkWarnings(checks)];
  if (partialKeys.length > 0)
    warnings.push(`metrics not reported by every fold, not summarised: ${partialKeys.join(', ')}`);
  const bestFold = selectBestFold(folds, source.config);
  if (bestFold === null)
    warnings.push('no fold has a finite bestValidation in metrics.json: no best fold');
  const training = source.trainingSummary;
  const labels = folds.flatMap((fold) => fold.predictions.test.map((row) => row.label));
  const scores = folds.flatMap((fold) => fold.predictions.test.map((row) => row.score));
  return {
    schema: summarySchema,
    runDir: source.runDir ?? training?.runDir ?? null,
    parentRunId: source.parentRunId,
    datasetHash: source.datasetHash,
    seed: training?.seed ?? source.config.seed,
    folds: folds.map(
      (fold) =>
        training?.folds.find((entry) => entry.fold === fold.fold) ?? {
          fold: fold.fold,
          runId: fold.runId,
          bestAdapterDir: fold.bestAdapterDir,
          bestStep: fold.metrics.bestStep,
          steps: fold.metrics.steps,
          stoppedEarly: fold.metrics.stoppedEarly,
          thresholds: {
            global: fold.thresholds.global,
            perCriterion: fold.thresholds.perCriterion,
            fellBack: fold.thresholds.fellBack,
          },
          testMetrics: fold.metrics.test,
          seconds: null,
        },
    ),
    pooled: pooledRecord(pooled),
    pooledPerCriterion: pooledPerCriterionRecord(pooled),
    acrossFolds,
    seconds: training?.seconds ?? null,
    aggregatedAt: now.toISOString(),
    source: source.kind,
    trackingUri: source.trackingUri,
    experimentId: source.experimentId,
    configHash: configHash(source.configYaml),
    foldsAggregated: folds.map((fold) => fold.fold),
    complete: checks.missingFolds.length === 0,
    bestFold: bestFold === null ? null : bestFold.fold,
    bestFoldSelection: bestFold,
    thresholdSummary: summarizeThresholds(folds),
    perCriterion: criterionRows(pooled),
    calibration: calibrationCurve(labels, scores, 10),
    checks,
    childRuns: folds.map((fold) => ({
      fold: fold.fold,
      runId: fold.runId,
      url: runUrl(source.trackingUri, source.experimentId, fold.runId),
    })),
    partialMetricKeys: partialKeys,
    warnings,
  };
}

/** The mean over folds of each criterion's threshold (the fold's global one where it has none). */
function foldMeanThresholds(perFold: ThresholdSummary['perFold']): {
  global: number;
  perCriterion: Record<string, number>;
} {
  const ids = [...new Set(perFold.flatMap((f) => Object.keys(f.perCriterion)))].sort((a, b) =>
    a.localeCompare(b, 'en', { numeric: true }),
  );
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    global: mean(perFold.map((f) => f.global)),
    perCriterion: Object.fromEntries(
      ids.map((id) => [id, mean(perFold.map((f) => f.perCriterion[id] ?? f.global))]),
    ),
  };
}

/**
 * thresholds.json with provenance. `source: 'fold_mean'` (the run-level file, used for the fold
 * ensemble) or `'best_fold'` (beside the registered best-fold adapter; null without a best fold).
 */
export function buildInferenceThresholds(
  summary: AggregateSummary,
  source: RunSource,
  kind: InferenceThresholds['source'] = 'fold_mean',
): InferenceThresholds | null {
  const best = summary.bestFoldSelection;
  if (kind === 'best_fold' && best === null) return null;
  const bestEntry =
    best === null ? undefined : summary.thresholdSummary.perFold.find((e) => e.fold === best.fold);
  const bestFold: BestFoldThresholds | null =
    best === null || bestEntry === undefined
      ? null
      : {
          fold: best.fold,
          runId: best.runId,
          global: bestEntry.global,
          perCriterion: { ...bestEntry.perCriterion },
          fellBack: [...bestEntry.fellBack],
          selection: {
            metric: best.metric,
            mode: best.mode,
            on: 'validation',
            value: best.validationValue,
          },
        };
  const foldMean = foldMeanThresholds(summary.thresholdSummary.perFold);
  const chosen = kind === 'best_fold' ? bestFold! : foldMean;
  return {
    schema: thresholdsSchema,
    decisionRule: 'score >= threshold',
    source: kind,
    global: chosen.global,
    perCriterion: { ...chosen.perCriterion },
    bestFold,
    foldMean: {
      ...foldMean,
      note: 'mean of the fold thresholds: none was tuned on the averaged probabilities of the ensemble',
    },
    folds: summary.thresholdSummary.perFold,
    acrossFolds: {
      global: summary.thresholdSummary.global,
      perCriterion: summary.thresholdSummary.perCriterion,
    },
    provenance: {
      parentRunId: summary.parentRunId,
      childRunIds: Object.fromEntries(summary.childRuns.map((c) => [String(c.fold), c.runId])),
      bestFold: best?.fold ?? null,
      bestFoldRunId: best?.runId ?? null,
      datasetHash: summary.datasetHash,
      configHash: summary.configHash,
      baseModel: { name: source.config.modelName, path: source.config.modelPath },
      trackingUri: summary.trackingUri,
      mentallamVersion: mentallamVersion(),
      createdAt: summary.aggregatedAt,
    },
  };
}

/** The same file for the best fold's adapter alone: its own thresholds at the top level. */
export function asBestFoldThresholds(thresholds: InferenceThresholds): InferenceThresholds {
  const best = thresholds.bestFold;
  if (best === null)
    throw new Error('no best fold (no fold reports a validation score): nothing to register');
  return {
    ...thresholds,
    source: 'best_fold',
    global: best.global,
    perCriterion: { ...best.perCriterion },
  };
}

/** A parsed thresholds.json checked against its schema and for what the schema cannot say. */
export function validateInferenceThresholds(
  value: unknown,
  where = 'thresholds.json',
): InferenceThresholds {
  return checkInferenceThresholds(fileFormats.inferenceThresholds.parse(value, where), where);
}

/**
 * What the schema cannot say: a best_fold file has its best fold's table, the provenance names
 * that fold, and the date parses.
 */
export function checkInferenceThresholds(
  t: InferenceThresholds,
  where = 'thresholds.json',
): InferenceThresholds {
  if (t.source === 'best_fold' && t.bestFold === null)
    throw new Error(`${where}: source best_fold without a bestFold table`);
  if (Number.isNaN(Date.parse(t.provenance.createdAt)))
    throw new Error(`${where}: provenance.createdAt must be an ISO date`);
  if ((t.bestFold?.fold ?? null) !== t.provenance.bestFold)
    throw new Error(`${where}: provenance.bestFold differs from bestFold.fold`);
  return t;
}
