/**
 * The aggregation maths, free of I/O: across-fold summaries, pooled out-of-fold metrics, the best
 * fold (picked on validation), the threshold summary, calibration bins and consistency checks.
 */
import { createHash } from 'node:crypto';
import { load } from 'js-yaml';
import {
  perCriterionMetrics,
  testKeyOf,
  pooledMetrics,
  summarizeAcrossFolds,
  type MetricSummary,
  type PooledMetrics,
} from '../metrics/index.js';
import type {
  AggregateChecks,
  BestFold,
  Calibration,
  CalibrationBin,
  ConfigView,
  CriterionRow,
  FoldArtifacts,
  ThresholdStats,
  ThresholdSummary,
} from './types.js';

/** sha256 of the saved config.yaml bytes, as `sha256:<hex>`. */
export function configHash(configYaml: string): string {
  return `sha256:${createHash('sha256').update(configYaml, 'utf8').digest('hex')}`;
}

function pick(tree: unknown, path: string[]): unknown {
  let node = tree;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** The config values aggregation uses, read from config.yaml text with documented defaults. */
export function parseConfigView(configYaml: string): ConfigView {
  const parsed = configYaml.trim() === '' ? {} : load(configYaml);
  const raw = (parsed !== null && typeof parsed === 'object' ? parsed : {}) as Record<
    string,
    unknown
  >;
  const metric = pick(raw, ['training', 'early_stopping', 'metric']);
  const selectionMetric = typeof metric === 'string' ? metric : 'f1';
  const mode = pick(raw, ['training', 'early_stopping', 'mode']);
  const selectionMode =
    mode === 'min' || mode === 'max' ? mode : selectionMetric === 'loss' ? 'min' : 'max';
  const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
  const folds = pick(raw, ['training', 'folds']);
  const nSplits = pick(raw, ['data', 'splits', 'n_splits']);
  const seed = pick(raw, ['seed']);
  return {
    selectionMetric,
    selectionMode,
    modelName: str(pick(raw, ['model', 'name'])),
    modelPath: str(pick(raw, ['model', 'path'])),
    nSplits: typeof nSplits === 'number' ? nSplits : null,
    plannedFolds:
      Array.isArray(folds) && folds.every((f) => typeof f === 'number')
        ? (folds as number[])
        : null,
    seed: typeof seed === 'number' ? seed : null,
    mlflowEnabled: pick(raw, ['logging', 'mlflow', 'enabled']) !== false,
    trackingUri: str(pick(raw, ['logging', 'mlflow', 'tracking_uri'])),
    raw,
  };
}

/**
 * The fold whose best VALIDATION value of the early-stopping metric (metrics.json bestValidation)
 * is best in the configured direction; ties go to the lowest fold index. Test scores are never
 * consulted, so the choice does not leak the held-out folds. null when no fold has a finite value.
 */
export function selectBestFold(
  folds: readonly FoldArtifacts[],
  view: Pick<ConfigView, 'selectionMetric' | 'selectionMode'>,
): BestFold | null {
  let best: FoldArtifacts | null = null;
  let bestValue = Number.NaN;
  const ordered = [...folds].sort((a, b) => a.fold - b.fold);
  for (const fold of ordered) {
    const value = fold.metrics.bestValidation;
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    const better =
      best === null || (view.selectionMode === 'max' ? value > bestValue : value < bestValue);
    if (better) {
      best = fold;
      bestValue = value;
    }
  }
  if (best === null) return null;
  const testValue = best.metrics.test[testKeyOf(view.selectionMetric)];
  return {
    fold: best.fold,
    runId: best.runId,
    metric: view.selectionMetric,
    mode: view.selectionMode,
    selectedOn: 'validation',
    validationValue: bestValue,
    testValue: typeof testValue === 'number' ? testValue : null,
  };
}

/**
 * Reliability diagram data as sklearn's `calibration_curve(strategy='uniform')`: edges
 * i·(1/nBins) (numpy linspace), a score goes to the first bin whose upper edge is >= it
 * (searchsorted, side='left'), empty bins are dropped.
 */
export function calibrationCurve(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  nBins = 10,
): Calibration {
  if (!Number.isInteger(nBins) || nBins < 1) throw new Error(`nBins is ${nBins}; expected >= 1`);
  const step = 1 / nBins;
  const edges = Array.from({ length: nBins + 1 }, (_, i) => (i === nBins ? 1 : i * step));
  const inner = edges.slice(1, -1);
  const sums = new Float64Array(nBins);
  const positives = new Float64Array(nBins);
  const counts = new Float64Array(nBins);
  const n = labels.length;
  for (let i = 0; i < n; i++) {
    const score = scores[i]!;
    let bin = 0;
    while (bin < inner.length && inner[bin]! < score) bin++;
    sums[bin]! += score;
    positives[bin]! += labels[i]!;
    counts[bin]! += 1;
  }
  const bins: CalibrationBin[] = [];
  let ece = 0;
  for (let b = 0; b < nBins; b++) {
    const count = counts[b]!;
    if (count === 0) continue;
    const meanPredicted = sums[b]! / count;
    const fractionPositive = positives[b]! / count;
    bins.push({
      bin: b,
      lower: edges[b]!,
      upper: edges[b + 1]!,
      count,
      meanPredicted,
      fractionPositive,
    });
    ece += (count / n) * Math.abs(fractionPositive - meanPredicted);
  }
  return { nBins, bins, ece: n === 0 ? Number.NaN : ece, n };
}

/** Each criterion seen in a fold's predictions mapped to the fold's threshold (global if absent). */
export function foldThresholdRecord(fold: FoldArtifacts): {
  thresholds: Record<string, number>;
  filled: string[];
} {
  const thresholds: Record<string, number> = {};
  const filled: string[] = [];
  for (const row of fold.predictions.test) {
    if (row.criterionId in thresholds) continue;
    const own = fold.thresholds.perCriterion[row.criterionId];
    if (typeof own === 'number') thresholds[row.criterionId] = own;
    else {
      thresholds[row.criterionId] = fold.thresholds.global;
      filled.push(row.criterionId);
    }
  }
  return { thresholds, filled };
}

/** Out-of-fold predictions of all folds, each fold classified at its own per-criterion thresholds. */
export function poolFolds(folds: readonly FoldArtifacts[]): PooledMetrics {
  return pooledMetrics(
    folds.map((fold) => ({
      labels: fold.predictions.test.map((row) => row.label),
      scores: fold.predictions.test.map((row) => row.score),
      criterionIds: fold.predictions.test.map((row) => row.criterionId),
      thresholds: foldThresholdRecord(fold).thresholds,
    })),
  );
}

export function criterionRows(pooled: PooledMetrics): CriterionRow[] {
  return pooled.criteria.map((criterion) => {
    const m = pooled.perCriterion[criterion]!;
    return {
      criterion,
      f1: m.f1,
      precision: m.precision,
      recall: m.recall,
      averagePrecision: m.averagePrecision,
      support: m.positives,
      n: m.n,
    };
  });
}

/**
 * Mean, sample std, min and max of every metric the folds' metrics.json report. Only metrics every
 * fold has are summarised (summarizeAcrossFolds needs the same names); the others are returned.
 */
export function summarizeFoldMetrics(folds: readonly FoldArtifacts[]): {
  acrossFolds: Record<string, MetricSummary>;
  partialKeys: string[];
} {
  if (folds.length === 0) return { acrossFolds: {}, partialKeys: [] };
  const all = new Set<string>();
  for (const fold of folds) for (const key of Object.keys(fold.metrics.test)) all.add(key);
  const common = [...all].filter((key) =>
    folds.every((fold) => typeof fold.metrics.test[key] === 'number'),
  );
  const partialKeys = [...all].filter((key) => !common.includes(key)).sort();
  const acrossFolds = summarizeAcrossFolds(
    folds.map((fold) => Object.fromEntries(common.map((key) => [key, fold.metrics.test[key]!]))),
  );
  return { acrossFolds, partialKeys };
}

function stats(values: number[]): ThresholdStats {
  const summary = summarizeAcrossFolds(values.map((value) => ({ value })))['value']!;
  return { ...summary, values };
}

export function summarizeThresholds(folds: readonly FoldArtifacts[]): ThresholdSummary {
  const criteria = new Set<string>();
  for (const fold of folds)
    for (const id of Object.keys(fold.thresholds.perCriterion)) criteria.add(id);
  const perCriterion: Record<string, ThresholdStats> = {};
  for (const id of [...criteria].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) {
    const values = folds
      .map((fold) => fold.thresholds.perCriterion[id])
      .filter((value): value is number => typeof value === 'number');
    perCriterion[id] = stats(values);
  }
  return {
    perFold: folds.map((fold) => ({
      fold: fold.fold,
      runId: fold.runId,
      global: fold.thresholds.global,
      perCriterion: { ...fold.thresholds.perCriterion },
      fellBack: [...(fold.thresholds.fellBack ?? [])],
    })),
    global: stats(folds.map((fold) => fold.thresholds.global)),
    perCriterion,
  };
}

/** Keys whose recomputation from predictions is checked against metrics.json. */
const reproducedKeys: [string, (report: ReturnType<typeof perCriterionMetrics>) => number][] = [
  ['test_f1', (r) => r.overall.f1],
  ['test_precision', (r) => r.overall.precision],
  ['test_recall', (r) => r.overall.recall],
  ['test_macro_f1', (r) => r.macroF1],
];

/** Consistency and leakage checks over the fold artifacts. */
export function checkFolds(
  folds: readonly FoldArtifacts[],
  options: { datasetHash: string | null; plannedFolds: number[] },
): AggregateChecks {
  const mismatches: AggregateChecks['mismatches'] = [];
  for (const fold of folds) {
    const rows = fold.predictions.test;
    if (rows.length === 0) continue;
    const report = perCriterionMetrics(
      rows.map((row) => row.label),
      rows.map((row) => row.score),
      rows.map((row) => row.criterionId),
      foldThresholdRecord(fold).thresholds,
    );
    for (const [key, value] of reproducedKeys) {
      const reported = fold.metrics.test[key];
      if (typeof reported !== 'number') continue;
      const recomputed = value(report);
      const same =
        (Number.isNaN(reported) && Number.isNaN(recomputed)) ||
        Math.abs(reported - recomputed) <= 1e-9;
      if (!same) mismatches.push({ fold: fold.fold, metric: key, reported, recomputed });
    }
  }
  const pairFolds = new Map<string, number>();
  const postFolds = new Map<string, Set<number>>();
  let pairsInSeveralTestFolds = 0;
  for (const fold of folds) {
    const seenPairs = new Set<string>();
    for (const row of fold.predictions.test) {
      const key = JSON.stringify([row.postId, row.criterionId]);
      if (!seenPairs.has(key)) {
        seenPairs.add(key);
        const count = (pairFolds.get(key) ?? 0) + 1;
        pairFolds.set(key, count);
        if (count === 2) pairsInSeveralTestFolds++;
      }
      const posts = postFolds.get(row.postId) ?? new Set<number>();
      posts.add(fold.fold);
      postFolds.set(row.postId, posts);
    }
  }
  let postsInSeveralTestFolds = 0;
  for (const foldsOfPost of postFolds.values()) if (foldsOfPost.size > 1) postsInSeveralTestFolds++;
  const validationTestOverlap = folds.map((fold) => {
    const testPosts = new Set(fold.predictions.test.map((row) => row.postId));
    const overlap = new Set(
      fold.predictions.validation.map((row) => row.postId).filter((id) => testPosts.has(id)),
    );
    return { fold: fold.fold, posts: overlap.size };
  });
  const datasetHashMismatches = folds
    .filter(
      (fold) =>
        options.datasetHash !== null &&
        fold.thresholds.datasetHash !== undefined &&
        fold.thresholds.datasetHash !== options.datasetHash,
    )
    .map((fold) => fold.fold);
  const present = new Set(folds.map((fold) => fold.fold));
  return {
    foldMetricsReproduced: mismatches.length === 0,
    mismatches,
    pairsInSeveralTestFolds,
    postsInSeveralTestFolds,
    validationTestOverlap,
    datasetHashMismatches,
    missingFolds: options.plannedFolds.filter((fold) => !present.has(fold)),
  };
}

/** Human-readable warnings for failed checks (also written to summary.json and the reports). */
export function checkWarnings(checks: AggregateChecks): string[] {
  const warnings: string[] = [];
  for (const m of checks.mismatches)
    warnings.push(
      `fold ${m.fold}: ${m.metric} in metrics.json is ${m.reported} but ${m.recomputed} recomputed from predictions.json`,
    );
  if (checks.pairsInSeveralTestFolds > 0)
    warnings.push(
      `${checks.pairsInSeveralTestFolds} (post, criterion) pairs are in the test part of several folds: pooled metrics count them more than once`,
    );
  if (checks.postsInSeveralTestFolds > 0)
    warnings.push(
      `${checks.postsInSeveralTestFolds} posts are in the test part of several folds (folds should be grouped by post)`,
    );
  for (const o of checks.validationTestOverlap)
    if (o.posts > 0)
      warnings.push(`fold ${o.fold}: ${o.posts} posts are in both its validation and test parts`);
  if (checks.datasetHashMismatches.length > 0)
    warnings.push(
      `folds ${checks.datasetHashMismatches.join(', ')} were trained on another dataset hash than the run`,
    );
  if (checks.missingFolds.length > 0)
    warnings.push(
      `folds ${checks.missingFolds.join(', ')} were planned but have no results: the aggregate covers only the folds present`,
    );
  return warnings;
}
