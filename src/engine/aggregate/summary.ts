/**
 * Builds the aggregate documents from fold artifacts: the extended summary.json and the inference
 * thresholds.json (schema in docs/aggregation.md).
 */
import { readFileSync } from 'node:fs';
import type { MetricSummary } from '../../metrics/index.js';
import {
  calibrationCurve,
  checkFolds,
  checkWarnings,
  configHash,
  criterionRows,
  poolFolds,
  pooledPerCriterionRecord,
  pooledRecord,
  selectBestFold,
  summarizeFoldMetrics,
  summarizeThresholds,
} from './compute.js';
import type {
  AggregateChecks,
  BestFold,
  Calibration,
  ChildRunLink,
  CriterionRow,
  RunSource,
  ThresholdStats,
  ThresholdSummary,
} from './types.js';

export const summarySchema = 'mentallam.summary/v1';
export const thresholdsSchema = 'mentallam.thresholds/v1';

export interface FoldSummaryEntry {
  fold: number;
  runId: string | null;
  [key: string]: unknown;
}

/** summary.json: the training's keys (recomputed where they derive from predictions) and the aggregate's. */
export interface AggregateSummary {
  runDir: string | null;
  parentRunId: string | null;
  datasetHash: string | null;
  seed: number | null;
  folds: FoldSummaryEntry[];
  /** Pooled out-of-fold metrics, each fold at its own per-criterion thresholds. */
  pooled: Record<string, number>;
  pooledPerCriterion: Record<string, Record<string, number>>;
  /** Mean, sample std (ddof 1), min, max of every test_* / threshold_* metric across folds. */
  acrossFolds: Record<string, MetricSummary>;
  /** Training wall time from the training's summary (null when it never finished). */
  seconds: number | null;
  schema: typeof summarySchema;
  aggregatedAt: string;
  source: RunSource['kind'];
  trackingUri: string | null;
  experimentId: string | null;
  configHash: string;
  foldsAggregated: number[];
  /** Every planned fold is present. */
  complete: boolean;
  /** The best fold's index (what `mentallam infer --run` uses); null when none has a validation score. */
  bestFold: number | null;
  /** How it was picked: on the VALIDATION value of the early-stopping metric, never on test. */
  bestFoldSelection: BestFold | null;
  thresholdSummary: ThresholdSummary;
  perCriterion: CriterionRow[];
  calibration: Calibration;
  checks: AggregateChecks;
  childRuns: ChildRunLink[];
  /** Metrics some folds lack (not summarised). */
  partialMetricKeys: string[];
  warnings: string[];
}

/** The best fold's own thresholds and how the fold was picked. */
export interface BestFoldThresholds {
  fold: number;
  runId: string | null;
  global: number;
  perCriterion: Record<string, number>;
  /** Criteria that had too few validation positives and use the fold's global threshold. */
  fellBack: string[];
  selection: { metric: string; mode: 'max' | 'min'; on: 'validation'; value: number };
}

/**
 * thresholds.json, read by `mentallam infer` (its top-level `global` / `perCriterion`). The
 * run-level file serves the fold ensemble (`source: 'fold_mean'`); the copy registered beside the
 * best fold's adapter serves that adapter (`source: 'best_fold'`). Both carry both tables.
 */
export interface InferenceThresholds {
  schema: typeof thresholdsSchema;
  /** Predict 1 when probability >= threshold. */
  decisionRule: 'score >= threshold';
  source: 'fold_mean' | 'best_fold';
  global: number;
  perCriterion: Record<string, number>;
  bestFold: BestFoldThresholds | null;
  /** Per criterion the mean over folds of (its threshold, else the fold's global one). */
  foldMean: { global: number; perCriterion: Record<string, number>; note: string };
  folds: ThresholdSummary['perFold'];
  acrossFolds: { global: ThresholdStats; perCriterion: Record<string, ThresholdStats> };
  provenance: {
    parentRunId: string | null;
    childRunIds: Record<string, string | null>;
    bestFold: number | null;
    bestFoldRunId: string | null;
    datasetHash: string | null;
    /** sha256 of the run's config.yaml bytes. */
    configHash: string;
    baseModel: { name: string | null; path: string | null };
    trackingUri: string | null;
    mentallamVersion: string;
    createdAt: string;
  };
}

export function mentallamVersion(): string {
  try {
    const path = new URL('../../../package.json', import.meta.url);
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
  const training = source.trainingSummary ?? {};
  const trainingFolds = Array.isArray(training.folds) ? (training.folds as FoldSummaryEntry[]) : [];
  const labels = folds.flatMap((fold) => fold.predictions.test.map((row) => row.label));
  const scores = folds.flatMap((fold) => fold.predictions.test.map((row) => row.score));
  return {
    runDir: source.runDir ?? (typeof training.runDir === 'string' ? training.runDir : null),
    parentRunId: source.parentRunId,
    datasetHash: source.datasetHash,
    seed: typeof training.seed === 'number' ? training.seed : source.config.seed,
    folds: folds.map(
      (fold) =>
        trainingFolds.find((entry) => entry.fold === fold.fold) ?? {
          fold: fold.fold,
          runId: fold.runId,
          bestAdapterDir: fold.bestAdapterDir,
          bestStep: fold.metrics.bestStep ?? null,
          steps: fold.metrics.steps ?? null,
          stoppedEarly: fold.metrics.stoppedEarly ?? null,
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
    seconds: typeof training.seconds === 'number' ? training.seconds : null,
    schema: summarySchema,
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

/** Checks a parsed run-level thresholds.json; throws naming the first problem. */
export function validateInferenceThresholds(value: unknown): InferenceThresholds {
  const where = 'thresholds.json';
  if (value === null || typeof value !== 'object') throw new Error(`${where}: not a JSON object`);
  const t = value as Partial<InferenceThresholds>;
  if (t.schema !== thresholdsSchema)
    throw new Error(
      `${where}: schema is ${JSON.stringify(t.schema)}; expected ${thresholdsSchema}`,
    );
  const inRange = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;
  if (!inRange(t.global)) throw new Error(`${where}: global must be a number in [0, 1]`);
  if (t.perCriterion === undefined || typeof t.perCriterion !== 'object')
    throw new Error(`${where}: perCriterion is missing`);
  for (const [id, threshold] of Object.entries(t.perCriterion))
    if (!inRange(threshold)) throw new Error(`${where}: perCriterion.${id} must be in [0, 1]`);
  if (t.source !== 'fold_mean' && t.source !== 'best_fold')
    throw new Error(`${where}: source must be fold_mean or best_fold`);
  if (t.source === 'best_fold' && (t.bestFold === null || t.bestFold === undefined))
    throw new Error(`${where}: source best_fold without a bestFold table`);
  const p = t.provenance;
  if (p === undefined) throw new Error(`${where}: provenance is missing`);
  if (typeof p.configHash !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(p.configHash))
    throw new Error(`${where}: provenance.configHash must be sha256:<64 hex>`);
  if (typeof p.createdAt !== 'string' || Number.isNaN(Date.parse(p.createdAt)))
    throw new Error(`${where}: provenance.createdAt must be an ISO date`);
  if ((t.bestFold?.fold ?? null) !== p.bestFold)
    throw new Error(`${where}: provenance.bestFold differs from bestFold.fold`);
  return t as InferenceThresholds;
}
