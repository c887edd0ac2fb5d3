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
  bestFold: BestFold | null;
  thresholdSummary: ThresholdSummary;
  perCriterion: CriterionRow[];
  calibration: Calibration;
  checks: AggregateChecks;
  childRuns: ChildRunLink[];
  /** Metrics some folds lack (not summarised). */
  partialMetricKeys: string[];
  warnings: string[];
}

/** thresholds.json at the run level: what `mentallam infer` reads. */
export interface InferenceThresholds {
  schema: typeof thresholdsSchema;
  /** Predict 1 when probability >= threshold. */
  decisionRule: 'score >= threshold';
  /** Whose thresholds `global` / `perCriterion` are: the best fold's, matching the registered adapter. */
  source: 'best_fold';
  fold: number;
  global: number;
  perCriterion: Record<string, number>;
  /** Criteria that had too few validation positives and use the global threshold. */
  fellBack: string[];
  /** For `inference.ensemble`: the mean of the fold thresholds (not tuned on ensemble scores). */
  ensemble: { global: number; perCriterion: Record<string, number>; note: string };
  folds: ThresholdSummary['perFold'];
  acrossFolds: { global: ThresholdStats; perCriterion: Record<string, ThresholdStats> };
  provenance: {
    parentRunId: string | null;
    childRunIds: Record<string, string | null>;
    bestFold: number;
    bestFoldRunId: string | null;
    selection: { metric: string; mode: 'max' | 'min'; on: 'validation'; value: number };
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
    bestFold,
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

/** The inference thresholds (best fold's) with provenance; null when no best fold exists. */
export function buildInferenceThresholds(
  summary: AggregateSummary,
  source: RunSource,
): InferenceThresholds | null {
  const best = summary.bestFold;
  if (best === null) return null;
  const bestEntry = summary.thresholdSummary.perFold.find((entry) => entry.fold === best.fold)!;
  return {
    schema: thresholdsSchema,
    decisionRule: 'score >= threshold',
    source: 'best_fold',
    fold: best.fold,
    global: bestEntry.global,
    perCriterion: { ...bestEntry.perCriterion },
    fellBack: [...bestEntry.fellBack],
    ensemble: {
      global: summary.thresholdSummary.global.mean,
      perCriterion: Object.fromEntries(
        Object.entries(summary.thresholdSummary.perCriterion).map(([id, s]) => [id, s.mean]),
      ),
      note: 'mean of the fold thresholds; not tuned on the averaged probabilities of the ensemble',
    },
    folds: summary.thresholdSummary.perFold,
    acrossFolds: {
      global: summary.thresholdSummary.global,
      perCriterion: summary.thresholdSummary.perCriterion,
    },
    provenance: {
      parentRunId: summary.parentRunId,
      childRunIds: Object.fromEntries(summary.childRuns.map((c) => [String(c.fold), c.runId])),
      bestFold: best.fold,
      bestFoldRunId: best.runId,
      selection: {
        metric: best.metric,
        mode: best.mode,
        on: 'validation',
        value: best.validationValue,
      },
      datasetHash: summary.datasetHash,
      configHash: summary.configHash,
      baseModel: { name: source.config.modelName, path: source.config.modelPath },
      trackingUri: summary.trackingUri,
      mentallamVersion: mentallamVersion(),
      createdAt: summary.aggregatedAt,
    },
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
  if (typeof t.fold !== 'number') throw new Error(`${where}: fold is missing`);
  const p = t.provenance;
  if (p === undefined) throw new Error(`${where}: provenance is missing`);
  if (typeof p.configHash !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(p.configHash))
    throw new Error(`${where}: provenance.configHash must be sha256:<64 hex>`);
  if (typeof p.createdAt !== 'string' || Number.isNaN(Date.parse(p.createdAt)))
    throw new Error(`${where}: provenance.createdAt must be an ISO date`);
  if (p.bestFold !== t.fold) throw new Error(`${where}: provenance.bestFold differs from fold`);
  return t as InferenceThresholds;
}
