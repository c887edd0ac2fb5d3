import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  aggregate,
  asBestFoldThresholds,
  calibrationCurve,
  parseConfigView,
  selectBestFold,
  validateInferenceThresholds,
  type AggregateSummary,
  type FoldArtifacts,
} from '../../../src/aggregate/index.js';
import { parseThresholds } from '../../../src/infer/index.js';
import { createLogger } from '../../../src/infra/index.js';
import {
  configYaml,
  datasetHash,
  fixtureFolds,
  tempDir,
  writeFixtureRun,
  type FixtureFold,
} from './fixtures.js';
import { fixtureFoldMetrics, fixtureFoldThresholds } from '../run/fixtures.js';

const now = new Date('2025-01-02T03:04:05.000Z');
const quiet = createLogger({ level: 'error' });

async function runFixture(options: Parameters<typeof writeFixtureRun>[1] = {}) {
  const dir = await writeFixtureRun(join(tempDir('aggregate'), 'run'), options);
  const result = await aggregate({ run: dir, logToMlflow: false, now, logger: quiet });
  return { dir, result };
}

describe('aggregate on a hand-computed three-fold run directory', () => {
  let dir: string;
  let summary: AggregateSummary;
  let result: Awaited<ReturnType<typeof aggregate>>;

  beforeAll(async () => {
    ({ dir, result } = await runFixture());
    summary = result.summary;
  });

  test('mean, sample std (ddof 1), min and max across folds', () => {
    // test_f1 = [0.5, 0.8, 0.8]: mean 0.7; deviations -0.2, 0.1, 0.1 -> sqrt(0.06 / 2)
    const f1 = summary.acrossFolds.test_f1!;
    expect(f1.mean).toBeCloseTo(0.7, 12);
    expect(f1.std).toBeCloseTo(Math.sqrt(0.03), 12);
    expect(f1.min).toBe(0.5);
    expect(f1.max).toBe(0.8);
    expect(f1.n).toBe(3);
    // test_macro_f1 = [0.5, 5/6, 5/6]
    expect(summary.acrossFolds.test_macro_f1!.mean).toBeCloseTo((0.5 + 5 / 3) / 3, 12);
    // every metric every fold reports is summarised, per criterion and thresholds included
    expect(Object.keys(summary.acrossFolds).sort()).toEqual(
      Object.keys(fixtureFolds()[0]!.test_metrics).sort(),
    );
    expect(summary.acrossFolds.test_A1_f1!.mean).toBeCloseTo((1 + 1 + 2 / 3) / 3, 12);
  });

  test('pooled out-of-fold metrics, each fold at its own per-criterion thresholds', () => {
    // Pooled counts: TP 1+2+2 = 5, FP 1+1+0 = 2, FN 1+0+1 = 2, TN 3 -> F1 = 10 / 14
    expect(summary.pooled.f1).toBeCloseTo(5 / 7, 12);
    expect(summary.pooled.precision).toBeCloseTo(5 / 7, 12);
    expect(summary.pooled.recall).toBeCloseTo(5 / 7, 12);
    expect(summary.pooled.n).toBe(12);
    // A1: TP 3, TN 2, FN 1 -> 6/7; A2: TP 2, FP 2, FN 1, TN 1 -> 4/7; macro (6/7 + 4/7) / 2
    expect(summary.pooled.macro_f1).toBeCloseTo(5 / 7, 12);
    const a1 = summary.perCriterion.find((r) => r.criterion === 'A1')!;
    const a2 = summary.perCriterion.find((r) => r.criterion === 'A2')!;
    expect(a1).toMatchObject({ support: 4, n: 6, precision: 1 });
    expect(a1.f1).toBeCloseTo(6 / 7, 12);
    expect(a1.recall).toBeCloseTo(3 / 4, 12);
    expect(a2).toMatchObject({ support: 3, n: 6, precision: 0.5 });
    expect(a2.f1).toBeCloseTo(4 / 7, 12);
    expect(summary.pooledPerCriterion.A2!.f1).toBeCloseTo(4 / 7, 12);
  });

  test('best fold is picked on VALIDATION, not on test', () => {
    // fold 0 has the best validation F1 (0.95) and the worst test F1 (0.5): it is still chosen.
    expect(summary.bestFold).toBe(0);
    expect(summary.bestFoldSelection).toEqual({
      fold: 0,
      runId: null,
      metric: 'f1',
      mode: 'max',
      selectedOn: 'validation',
      validationValue: 0.95,
      testValue: 0.5,
    });
  });

  test('threshold summary per fold, global and per criterion', () => {
    const t = summary.thresholdSummary;
    expect(t.perFold.map((f) => f.global)).toEqual([0.5, 0.6, 0.3]);
    expect(t.perFold[2]!.fellBack).toEqual(['A2']);
    // global [0.5, 0.6, 0.3]: mean 0.4667, std sqrt(0.046667 / 2) = 0.152753 (numpy ddof=1)
    expect(t.global.mean).toBeCloseTo(1.4 / 3, 12);
    expect(t.global.std).toBeCloseTo(0.15275252316519466, 12);
    expect(t.perCriterion.A2!.values).toEqual([0.4, 0.6, 0.3]);
    expect(t.perCriterion.A2!.min).toBe(0.3);
    expect(t.perCriterion.A2!.max).toBe(0.6);
  });

  test('reliability diagram as sklearn calibration_curve(n_bins=10)', () => {
    // sklearn: prob_true [0, 0, .5, 1, .5, 2/3, 1, 1], prob_pred [.1, .2, .275, .35, .475, .65333, .8, .9]
    const bins = summary.calibration.bins;
    expect(bins.map((b) => b.bin)).toEqual([0, 1, 2, 3, 4, 6, 7, 8]);
    expect(bins.map((b) => b.fractionPositive)).toEqual([0, 0, 0.5, 1, 0.5, 2 / 3, 1, 1]);
    const expectedPred = [0.1, 0.2, 0.275, 0.35, 0.475, 0.6533333333333333, 0.8, 0.9];
    bins.forEach((b, i) => expect(b.meanPredicted).toBeCloseTo(expectedPred[i]!, 12));
    expect(bins.map((b) => b.count)).toEqual([1, 1, 2, 1, 2, 3, 1, 1]);
    // ECE = (0.1 + 0.2 + 2·0.225 + 0.65 + 2·0.025 + 3·(2/3 − 0.65333) + 0.2 + 0.1) / 12
    expect(summary.calibration.ece).toBeCloseTo(1.79 / 12, 12);
  });

  test('checks pass on consistent artifacts; training keys are kept', () => {
    expect(summary.checks).toEqual({
      foldMetricsReproduced: true,
      mismatches: [],
      pairsInSeveralTestFolds: 0,
      postsInSeveralTestFolds: 0,
      validationTestOverlap: [
        { fold: 0, posts: 0 },
        { fold: 1, posts: 0 },
        { fold: 2, posts: 0 },
      ],
      datasetHashMismatches: [],
      missingFolds: [],
    });
    expect(summary.complete).toBe(true);
    expect(summary.warnings).toEqual([]);
    expect(summary.seconds).toBe(12.5);
    expect(summary.seed).toBe(7);
    expect(summary.datasetHash).toBe(datasetHash);
    expect(summary.folds.map((f) => f.seconds)).toEqual([1.5, 1.5, 1.5]);
    const onDisk = JSON.parse(readFileSync(join(dir, 'aggregate.json'), 'utf8'));
    expect(onDisk.schema).toBe('mentallam.aggregate/v1');
    // Aggregation writes its own file: the training's summary.json is left as training wrote it.
    const training = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    expect(training.schema).toBeUndefined();
    expect(training.seconds).toBe(12.5);
    expect(training.pooled).toEqual({});
    for (const key of [
      'runDir',
      'parentRunId',
      'datasetHash',
      'seed',
      'folds',
      'pooled',
      'pooledPerCriterion',
      'acrossFolds',
      'seconds',
    ])
      expect(onDisk).toHaveProperty(key);
    expect(onDisk.pooled.f1).toBeCloseTo(5 / 7, 12);
  });

  test("thresholds.json: fold-mean thresholds for the ensemble, the best fold's beside, provenance", () => {
    const written = JSON.parse(readFileSync(join(dir, 'thresholds.json'), 'utf8'));
    const t = validateInferenceThresholds(written);
    expect(t).toMatchObject({
      schema: 'mentallam.thresholds/v1',
      decisionRule: 'score >= threshold',
      source: 'fold_mean',
      bestFold: {
        fold: 0,
        runId: null,
        global: 0.5,
        perCriterion: { A1: 0.5, A2: 0.4 },
        fellBack: [],
        selection: { metric: 'f1', mode: 'max', on: 'validation', value: 0.95 },
      },
    });
    // global (0.5 + 0.6 + 0.3) / 3; A2 (0.4 + 0.6 + 0.3) / 3
    expect(t.global).toBeCloseTo(1.4 / 3, 12);
    expect(t.perCriterion.A1).toBeCloseTo(1.4 / 3, 12);
    expect(t.perCriterion.A2).toBeCloseTo(1.3 / 3, 12);
    expect(t.foldMean.perCriterion).toEqual(t.perCriterion);
    expect(t.folds.map((f) => f.global)).toEqual([0.5, 0.6, 0.3]);
    expect(t.provenance).toMatchObject({
      parentRunId: null,
      childRunIds: { '0': null, '1': null, '2': null },
      bestFold: 0,
      bestFoldRunId: null,
      datasetHash,
      configHash: `sha256:${createHash('sha256').update(configYaml).digest('hex')}`,
      baseModel: { name: 'tiny-llama', path: 'models/tiny-llama' },
      createdAt: now.toISOString(),
    });
    // The registered copy: the best fold's own thresholds at the top level.
    const registered = validateInferenceThresholds(asBestFoldThresholds(t));
    expect(registered).toMatchObject({
      source: 'best_fold',
      global: 0.5,
      perCriterion: { A1: 0.5, A2: 0.4 },
    });
    // mentallam infer reads the top-level global / perCriterion of either file.
    expect(parseThresholds(registered, 'registered').perCriterion).toEqual({ A1: 0.5, A2: 0.4 });
    expect(parseThresholds(t, 'run').global).toBeCloseTo(1.4 / 3, 12);
  });

  test('summary.md and report.html: tables, inline SVG, no URL or external resource', () => {
    const md = readFileSync(join(dir, 'summary.md'), 'utf8');
    expect(md).toContain('| **mean ± std** | 0.7000 ± 0.1732');
    expect(md).toContain('| A1 | 0.8571 | 1.0000 | 0.7500 |');
    expect(md).toMatch(/picked on its VALIDATION f1/);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect((html.match(/<svg/g) ?? []).length).toBe(4);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    for (const name of [
      'cv_fold_metrics',
      'cv_pr_curves',
      'cv_per_criterion_f1',
      'cv_calibration',
    ]) {
      expect(existsSync(join(dir, 'plots', `${name}.svg`))).toBe(true);
      expect(existsSync(join(dir, 'plots', `${name}.png`))).toBe(true);
    }
    expect(result.loggedToMlflow).toBe(false);
    expect(result.files.thresholdsJson).toBe(join(dir, 'thresholds.json'));
  });
});

describe('aggregate: problems are detected and reported', () => {
  test('a metrics.json that predictions.json does not reproduce is flagged', async () => {
    const folds = fixtureFolds();
    folds[1]!.test_metrics.test_f1 = 0.9;
    const { result } = await runFixture({ folds });
    expect(result.summary.checks.foldMetricsReproduced).toBe(false);
    expect(result.summary.checks.mismatches).toEqual([
      { fold: 1, metric: 'test_f1', reported: 0.9, recomputed: expect.closeTo(0.8, 12) },
    ]);
    expect(result.summary.warnings.join('\n')).toMatch(/fold 1: test_f1 in metrics.json is 0.9/);
  });

  test('a post in two test folds and a validation/test overlap are counted', async () => {
    const folds: FixtureFold[] = fixtureFolds();
    folds[1]!.test[0]!.postId = 'p1';
    folds[1]!.test[1]!.postId = 'p1';
    folds[2]!.validation[0]!.postId = 'p5';
    const { result } = await runFixture({ folds });
    expect(result.summary.checks.pairsInSeveralTestFolds).toBe(2);
    expect(result.summary.checks.postsInSeveralTestFolds).toBe(1);
    expect(result.summary.checks.validationTestOverlap[2]).toEqual({ fold: 2, posts: 1 });
  });

  test('a planned fold without results makes the aggregate incomplete', async () => {
    const { result } = await runFixture({
      config: configYaml.replace('n_splits: 3', 'n_splits: 4'),
    });
    expect(result.summary.checks.missingFolds).toEqual([3]);
    expect(result.summary.complete).toBe(false);
    expect(readFileSync(result.files.summaryMd, 'utf8')).toContain('(INCOMPLETE)');
  });

  test('an interrupted run (no training summary) is aggregated from its fold directories', async () => {
    const { result } = await runFixture({ withoutSummary: true });
    expect(result.summary.seconds).toBeNull();
    expect(result.summary.datasetHash).toBe(datasetHash);
    expect(result.summary.folds.map((f) => f.fold)).toEqual([0, 1, 2]);
    expect(result.summary.pooled.f1).toBeCloseTo(5 / 7, 12);
  });

  test('a corrupt predictions.json fails naming the file; a missing one leaves the fold out', async () => {
    const dir = await writeFixtureRun(join(tempDir('aggregate'), 'run'));
    writeFileSync(join(dir, 'fold_2', 'predictions.json'), '');
    await expect(aggregate({ run: dir, logToMlflow: false, logger: quiet })).rejects.toThrow(
      /fold_2\/predictions.json: not valid JSON/,
    );
    rmSync(join(dir, 'fold_2', 'predictions.json'));
    const result = await aggregate({ run: dir, logToMlflow: false, logger: quiet });
    expect(result.summary.foldsAggregated).toEqual([0, 1]);
    expect(result.summary.checks.missingFolds).toEqual([2]);
    expect(result.summary.warnings[0]).toMatch(/fold 2 has no predictions.json/);
    // Pooled over folds 0 and 1 only: TP 3, FP 2, FN 1 -> F1 6 / 9
    expect(result.summary.pooled.f1).toBeCloseTo(6 / 9, 12);
  });
});

describe('best-fold selection and config defaults', () => {
  const fold = (index: number, bestValidation: number | null): FoldArtifacts => ({
    fold: index,
    runId: `run${index}`,
    predictions: { fold: index, test: [], validation: [] },
    thresholds: fixtureFoldThresholds(index, 0.5),
    metrics: fixtureFoldMetrics({
      test: { test_f1: 1 - index / 10, test_brier: index / 10 },
      bestValidation,
    }),
    bestAdapterDir: null,
  });

  test('ties go to the lowest fold; loss is minimised; folds without a value are skipped', () => {
    const folds = [fold(2, 0.8), fold(0, null), fold(1, 0.8)];
    expect(selectBestFold(folds, { selectionMetric: 'f1', selectionMode: 'max' })?.fold).toBe(1);
    const losses = [fold(0, 0.3), fold(1, 0.2), fold(2, Number.NaN)];
    const best = selectBestFold(losses, { selectionMetric: 'loss', selectionMode: 'min' });
    expect(best).toMatchObject({ fold: 1, validationValue: 0.2, testValue: 0.1 });
    expect(
      selectBestFold([fold(0, null)], { selectionMetric: 'f1', selectionMode: 'max' }),
    ).toBeNull();
  });

  test('config defaults: f1 / max, and min for loss when no mode is given', () => {
    expect(parseConfigView('')).toMatchObject({ selectionMetric: 'f1', selectionMode: 'max' });
    expect(parseConfigView('training:\n  early_stopping:\n    metric: loss\n')).toMatchObject({
      selectionMetric: 'loss',
      selectionMode: 'min',
    });
  });

  test('calibration bin edges follow numpy linspace and searchsorted(side=left)', () => {
    // 0.1 goes to bin 0 ([0, 0.1]); 0.7 to bin 6 because 7 * 0.1 = 0.7000000000000001 > 0.7.
    const c = calibrationCurve([0, 1, 1, 0], [0, 0.1, 0.7, 1], 10);
    expect(c.bins.map((b) => [b.bin, b.count])).toEqual([
      [0, 2],
      [6, 1],
      [9, 1],
    ]);
  });
});
