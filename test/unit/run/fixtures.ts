/**
 * Complete, schema-valid run files for tests that need a run directory without training one:
 * each helper fills what a test does not care about, and tsc checks them against the run store's
 * types, so a fixture cannot drift from what training writes.
 */
import type {
  AggregateSummary,
  FoldMetricsFile,
  FoldThresholdsFile,
  ManifestFile,
} from '../../../src/run/index.js';

export function fixtureManifest(hash: string): ManifestFile {
  const stats = { min: 1, p50: 2, p95: 3, max: 4, mean: 2.5 };
  return {
    source: 'annotations',
    files: ['redsm5_posts.csv', 'redsm5_annotations.csv'],
    counts: {
      posts: 2,
      criteria: 2,
      pairs: 4,
      positivePairs: 2,
      annotationRows: 2,
      status0Rows: 0,
    },
    expectedCounts: { posts: 2, criteria: 2, pairs: 4 },
    positivesPerCriterion: [
      { id: 'A1', symptom: 'DEPRESSED_MOOD', positives: 1 },
      { id: 'A2', symptom: 'ANHEDONIA', positives: 1 },
    ],
    specialCaseRows: 0,
    postsWithoutSymptoms: 0,
    textLength: { chars: stats, words: stats },
    countOverrideReason: 'test fixture',
    hashFormat: 'fixture',
    hash,
    tokenization: {
      maxLength: 128,
      truncation: 'head',
      truncatedPairs: 0,
      truncationRate: 0,
      tokenizerHash: 'fixture-tokenizer',
    },
  };
}

export function fixtureFoldThresholds(
  fold: number,
  global: number,
  perCriterion: Record<string, number> = {},
  extra: Partial<FoldThresholdsFile> = {},
): FoldThresholdsFile {
  return {
    global,
    perCriterion,
    fellBack: [],
    minPositives: 10,
    detail: {},
    datasetHash: 'fixture-dataset',
    fold,
    ...extra,
  };
}

export function fixtureFoldMetrics(extra: Partial<FoldMetricsFile> = {}): FoldMetricsFile {
  return {
    test: {},
    confusionMatrix: { tn: 0, fp: 0, fn: 0, tp: 0 },
    bestStep: 0,
    bestValidation: null,
    steps: 0,
    stoppedEarly: false,
    validationHistory: [],
    ...extra,
  };
}

/** An aggregate.json that names `bestFold` and holds nothing else of interest. */
export function fixtureAggregate(bestFold: number | null): AggregateSummary {
  const stats = { mean: 0.5, std: Number.NaN, min: 0.5, max: 0.5, n: 1, values: [0.5] };
  return {
    schema: 'mentallam.aggregate/v1',
    runDir: null,
    parentRunId: null,
    datasetHash: null,
    seed: null,
    folds: [],
    pooled: {},
    pooledPerCriterion: {},
    acrossFolds: {},
    seconds: null,
    aggregatedAt: '2025-01-02T03:04:05.000Z',
    source: 'run-dir',
    trackingUri: null,
    experimentId: null,
    configHash: `sha256:${'0'.repeat(64)}`,
    foldsAggregated: [],
    complete: true,
    bestFold,
    bestFoldSelection: null,
    thresholdSummary: { perFold: [], global: stats, perCriterion: {} },
    perCriterion: [],
    calibration: { nBins: 10, bins: [], ece: Number.NaN, n: 0 },
    checks: {
      foldMetricsReproduced: true,
      mismatches: [],
      pairsInSeveralTestFolds: 0,
      postsInSeveralTestFolds: 0,
      validationTestOverlap: [],
      datasetHashMismatches: [],
      missingFolds: [],
    },
    childRuns: [],
    partialMetricKeys: [],
    warnings: [],
  };
}
