/**
 * The run store: every file is checked on write and on read against one schema, NaN survives
 * the JSON round trip as null, and every error names the file and the key.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  RunFileError,
  RunStore,
  foldOfDirName,
  thresholdTableFile,
  type FoldMetricsFile,
} from '../../../src/run/index.js';

const metrics: FoldMetricsFile = {
  test: { test_f1: 0.5, test_roc_auc: Number.NaN },
  confusionMatrix: { tn: 1, fp: 2, fn: 3, tp: 4 },
  bestStep: 3,
  bestValidation: 0.75,
  steps: 6,
  stoppedEarly: false,
  validationHistory: [
    { step: 3, value: 0.75, trainLoss: 0.6, metrics: { f1: 0.75, roc_auc: NaN } },
  ],
};

function store(): RunStore {
  return new RunStore(mkdtempSync(join(tmpdir(), 'mentallam-store-')));
}

describe('run store', () => {
  test('layout: one folder per fold, files under their documented names', () => {
    const run = new RunStore('/runs/r');
    expect(run.summary.path).toBe('/runs/r/summary.json');
    expect(run.aggregate.path).toBe('/runs/r/aggregate.json');
    expect(run.split(2).path).toBe('/runs/r/folds/fold_2.json');
    const fold = run.fold(1);
    expect(fold.metrics.path).toBe('/runs/r/fold_1/metrics.json');
    expect(fold.bestAdapterDir).toBe('/runs/r/fold_1/best_adapter');
    expect(fold.checkpointState.path).toBe('/runs/r/fold_1/checkpoint/trainer_state.json');
    expect(fold.artifactPaths.map((path) => path.slice('/runs/r/fold_1/'.length))).toEqual([
      'predictions.json',
      'thresholds.json',
      'metrics.json',
      'curves.json',
    ]);
    expect(foldOfDirName('fold_12')).toBe(12);
    expect(foldOfDirName('fold_x')).toBeNull();
  });

  test('metrics round-trip exactly; NaN is null on disk and NaN again when read', async () => {
    const run = store();
    await run.fold(0).metrics.write(metrics);
    const onDisk = JSON.parse(readFileSync(run.fold(0).metrics.path, 'utf8'));
    expect(onDisk.test.test_roc_auc).toBeNull();
    expect(onDisk.validationHistory[0].metrics.roc_auc).toBeNull();
    const back = await run.fold(0).metrics.read();
    expect(back.test.test_roc_auc).toBeNaN();
    expect(back).toEqual(metrics);
  });

  test('a value outside its schema is refused before anything is written', async () => {
    const run = store();
    const write = run.fold(0).predictions.write({
      fold: 0,
      test: [{ postId: 'p1', criterionId: 'A1', label: 1, score: 1.5 }],
      validation: [],
    });
    await expect(write).rejects.toThrow(RunFileError);
    await expect(write).rejects.toThrow(
      /fold_0\/predictions\.json: refusing to write a fold's predictions\.json: test\.0\.score must be <= 1/,
    );
    expect(run.fold(0).predictions.exists()).toBe(false);
  });

  test('reading names the file and every offending key', async () => {
    const run = store();
    mkdirSync(run.fold(0).dir, { recursive: true });
    writeFileSync(
      run.fold(0).metrics.path,
      JSON.stringify({ ...metrics, test: { test_f1: 'high' }, stoppedEarly: 'no' }),
    );
    await expect(run.fold(0).metrics.read()).rejects.toThrow(
      /metrics\.json: not a fold's metrics\.json: test\.test_f1 must be number or must be null; stoppedEarly must be boolean$/,
    );
    writeFileSync(run.fold(0).metrics.path, '{"test": ');
    await expect(run.fold(0).metrics.read()).rejects.toThrow(/metrics\.json: not valid JSON/);
    await expect(run.summary.read()).rejects.toThrow(
      /summary\.json: a training run's summary\.json is missing/,
    );
    await expect(run.summary.readIfExists()).resolves.toBeNull();
  });

  test('overrides.yaml must be a list of strings', async () => {
    const run = store();
    await run.overrides.write(['training.lr=3e-5', 'model=tiny']);
    await expect(run.overrides.read()).resolves.toEqual(['training.lr=3e-5', 'model=tiny']);
    writeFileSync(run.overrides.path, 'training: 1\n');
    await expect(run.overrides.read()).rejects.toThrow(/overrides\.yaml: expected a YAML list/);
  });

  test('folds() lists the fold folders present, by index', async () => {
    const run = store();
    for (const name of ['fold_10', 'fold_2', 'folds', 'fold_x']) mkdirSync(join(run.dir, name));
    expect((await run.folds()).map((fold) => fold.index)).toEqual([2, 10]);
  });

  test('any thresholds file reads as a table; a threshold outside [0, 1] is refused', async () => {
    const run = store();
    const path = join(run.dir, 'thresholds.json');
    writeFileSync(path, JSON.stringify({ global: 0.4, perCriterion: { A1: 0.3 }, fellBack: [] }));
    await expect(thresholdTableFile(path).read()).resolves.toMatchObject({
      global: 0.4,
      perCriterion: { A1: 0.3 },
    });
    writeFileSync(path, JSON.stringify({ global: 1.5 }));
    await expect(thresholdTableFile(path).read()).rejects.toThrow(/global must be <= 1/);
  });
});
