/**
 * A three-fold run directory small enough to check every aggregate number by hand. Criteria A1
 * and A2, two posts per test fold, each fold at its own thresholds. The hand-worked values are
 * in aggregate.test.ts next to each assertion.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { RunStore, type PredictionRow } from '../../../src/run/index.js';
import { fixtureFoldMetrics, fixtureFoldThresholds, fixtureManifest } from '../run/fixtures.js';

export type FixtureRow = PredictionRow;

export interface FixtureFold {
  fold: number;
  test: FixtureRow[];
  validation: FixtureRow[];
  global: number;
  perCriterion: Record<string, number>;
  fellBack: string[];
  /** The early-stopping metric on validation at the best step. */
  bestValidation: number;
  /** metrics.json test record (hand computed). */
  test_metrics: Record<string, number>;
}

const row = (postId: string, criterionId: string, label: 0 | 1, score: number): FixtureRow => ({
  postId,
  criterionId,
  label,
  score,
});

export const datasetHash = 'hash-of-the-fixture-dataset';

export const configYaml = `seed: 7
data:
  splits:
    n_splits: 3
model:
  name: tiny-llama
  path: models/tiny-llama
training:
  early_stopping:
    metric: f1
    mode: max
  folds: null
logging:
  mlflow:
    enabled: false
    tracking_uri: ''
`;

/**
 * fold 0 at A1 0.5 / A2 0.4: A1 TP, A2 FP (0.45 >= 0.4), A1 TN, A2 FN -> F1 0.5, macro 0.5
 * fold 1 at 0.6: A1 TP, A2 TP, A1 TN, A2 FP (0.61) -> F1 0.8, P 2/3, R 1, macro (1 + 2/3) / 2
 * fold 2 at 0.3: A1 FN (0.25), A2 TN, A1 TP, A2 TP -> F1 0.8, P 1, R 2/3, macro (2/3 + 1) / 2
 */
export function fixtureFolds(): FixtureFold[] {
  return [
    {
      fold: 0,
      test: [
        row('p1', 'A1', 1, 0.9),
        row('p1', 'A2', 0, 0.45),
        row('p2', 'A1', 0, 0.3),
        row('p2', 'A2', 1, 0.35),
      ],
      validation: [row('v0', 'A1', 1, 0.8), row('v0', 'A2', 0, 0.2)],
      global: 0.5,
      perCriterion: { A1: 0.5, A2: 0.4 },
      fellBack: [],
      bestValidation: 0.95,
      test_metrics: {
        test_f1: 0.5,
        test_precision: 0.5,
        test_recall: 0.5,
        test_macro_f1: 0.5,
        test_A1_f1: 1,
        test_A2_f1: 0,
        threshold_global: 0.5,
        threshold_A1: 0.5,
        threshold_A2: 0.4,
      },
    },
    {
      fold: 1,
      test: [
        row('p3', 'A1', 1, 0.7),
        row('p3', 'A2', 1, 0.65),
        row('p4', 'A1', 0, 0.2),
        row('p4', 'A2', 0, 0.61),
      ],
      validation: [row('v1', 'A1', 0, 0.4), row('v1', 'A2', 1, 0.7)],
      global: 0.6,
      perCriterion: { A1: 0.6, A2: 0.6 },
      fellBack: [],
      bestValidation: 0.9,
      test_metrics: {
        test_f1: 0.8,
        test_precision: 2 / 3,
        test_recall: 1,
        test_macro_f1: 5 / 6,
        test_A1_f1: 1,
        test_A2_f1: 2 / 3,
        threshold_global: 0.6,
        threshold_A1: 0.6,
        threshold_A2: 0.6,
      },
    },
    {
      fold: 2,
      test: [
        row('p5', 'A1', 1, 0.25),
        row('p5', 'A2', 0, 0.1),
        row('p6', 'A1', 1, 0.8),
        row('p6', 'A2', 1, 0.5),
      ],
      validation: [row('v2', 'A1', 1, 0.6), row('v2', 'A2', 0, 0.3)],
      global: 0.3,
      perCriterion: { A1: 0.3, A2: 0.3 },
      fellBack: ['A2'],
      bestValidation: 0.6,
      test_metrics: {
        test_f1: 0.8,
        test_precision: 1,
        test_recall: 2 / 3,
        test_macro_f1: 5 / 6,
        test_A1_f1: 2 / 3,
        test_A2_f1: 1,
        threshold_global: 0.3,
        threshold_A1: 0.3,
        threshold_A2: 0.3,
      },
    },
  ];
}

export interface FixtureOptions {
  folds?: FixtureFold[];
  config?: string;
  parentRunId?: string | null;
  /** Child run ids by fold (written into the training summary). */
  runIds?: Record<number, string>;
  /** Leave the training summary.json out (an interrupted run). */
  withoutSummary?: boolean;
}

/** Writes the run directory layout the training produces, through the run store; returns its path. */
export async function writeFixtureRun(dir: string, options: FixtureOptions = {}): Promise<string> {
  const folds = options.folds ?? fixtureFolds();
  const store = await new RunStore(dir).create();
  // The config's exact bytes matter (config hash); they are written as given.
  writeFileSync(store.config.path, options.config ?? configYaml);
  await store.overrides.write([]);
  await store.manifest.write(fixtureManifest(datasetHash));
  for (const fold of folds) {
    const files = store.fold(fold.fold);
    mkdirSync(files.bestAdapterDir, { recursive: true });
    writeFileSync(
      join(files.bestAdapterDir, 'adapter_config.json'),
      JSON.stringify({ peft_type: 'LORA', use_dora: true, r: 8 }),
    );
    writeFileSync(
      join(files.bestAdapterDir, 'adapter_model.safetensors'),
      Buffer.from(`fake-weights-${fold.fold}`),
    );
    await files.predictions.write({
      fold: fold.fold,
      test: fold.test,
      validation: fold.validation,
    });
    await files.thresholds.write(
      fixtureFoldThresholds(fold.fold, fold.global, fold.perCriterion, {
        fellBack: fold.fellBack,
        datasetHash,
      }),
    );
    await files.metrics.write(
      fixtureFoldMetrics({
        test: fold.test_metrics,
        confusionMatrix: { tn: 1, fp: 1, fn: 1, tp: 1 },
        bestStep: 10 + fold.fold,
        bestValidation: fold.bestValidation,
        steps: 20,
        stoppedEarly: true,
      }),
    );
  }
  if (!options.withoutSummary)
    await store.summary.write({
      runDir: store.dir,
      parentRunId: options.parentRunId ?? null,
      datasetHash,
      seed: 7,
      folds: folds.map((fold) => ({
        fold: fold.fold,
        runId: options.runIds?.[fold.fold] ?? null,
        bestAdapterDir: store.fold(fold.fold).bestAdapterDir,
        bestStep: 10 + fold.fold,
        steps: 20,
        stoppedEarly: true,
        thresholds: {
          global: fold.global,
          perCriterion: fold.perCriterion,
          fellBack: fold.fellBack,
        },
        testMetrics: fold.test_metrics,
        seconds: 1.5,
      })),
      failedFolds: [],
      pooled: {},
      pooledPerCriterion: {},
      acrossFolds: {},
      seconds: 12.5,
    });
  return store.dir;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mentallam-${prefix}-`));
}
