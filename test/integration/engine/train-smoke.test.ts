/**
 * End-to-end: a 2-fold run on the tiny model and a small synthetic data set against a real
 * MLflow server, then checks of what a user relies on: runs, metrics, artifacts, fold files,
 * thresholds, and best adapters that load.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { doraTargetModules } from '../../../src/config/index.js';
import { trainFolds, type TrainEvent, type TrainFoldsResult } from '../../../src/engine/index.js';
import { aggregate, register } from '../../../src/aggregate/index.js';
import { infer } from '../../../src/infer/index.js';
import { MlflowClient, startLocalServer, type LocalServer } from '../../../src/tracking/index.js';
import { Classifier } from '../../../src/native.js';

const criteriaPath = resolve('data/dsm5/criteria.json');

function smokeOverrides(dir: string, trackingUri: string): string[] {
  return [
    'model=tiny',
    'training=default',
    `run_dir=${join(dir, 'run')}`,
    `model.path=${join(dir, 'model')}`,
    `data.dir=${join(dir, 'data')}`,
    `data.criteria_path=${criteriaPath}`,
    'data.synthetic.n_posts=100',
    'data.splits.n_splits=2',
    'data.splits.inner_validation_fraction=0.25',
    'data.prompt.max_length=128',
    'training.max_epochs=1',
    'training.micro_batch_size=16',
    'training.effective_batch_size=32',
    'training.eval_every_steps=5',
    `logging.mlflow.tracking_uri=${trackingUri}`,
    'logging.mlflow.experiment_name=smoke',
    'logging.progress.mode=none',
    'logging.level=warn',
  ];
}

describe('trainFolds smoke run (2 folds, tiny model, real MLflow)', () => {
  let server: LocalServer;
  let dir: string;
  let result: TrainFoldsResult;
  const events: TrainEvent[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mentallam-smoke-'));
    server = await startLocalServer({ workDir: join(dir, 'mlflow') });
    result = await trainFolds({
      overrides: smokeOverrides(dir, server.uri),
      cwd: dir,
      onEvent: (event) => events.push(event),
    });
  }, 600_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('writes the run directory: config, overrides, manifest, fold files, per-fold outputs, summary', () => {
    for (const name of ['config.yaml', 'overrides.yaml', 'manifest.json', 'summary.json']) {
      expect(existsSync(join(result.runDir, name))).toBe(true);
    }
    expect(readdirSync(join(result.runDir, 'folds')).sort()).toEqual([
      'fold_0.json',
      'fold_1.json',
    ]);
    for (const fold of [0, 1]) {
      const foldDir = join(result.runDir, `fold_${fold}`);
      for (const name of ['predictions.json', 'thresholds.json', 'metrics.json', 'curves.json']) {
        expect(existsSync(join(foldDir, name))).toBe(true);
      }
      expect(existsSync(join(foldDir, 'best_adapter', 'adapter_config.json'))).toBe(true);
      expect(existsSync(join(foldDir, 'plots', 'pr_curve.svg'))).toBe(true);
      const thresholds = JSON.parse(readFileSync(join(foldDir, 'thresholds.json'), 'utf8'));
      const foldResult = result.folds.find((entry) => entry.fold === fold)!;
      expect(thresholds.global).toBe(foldResult.thresholds.global);
      expect(thresholds.perCriterion).toEqual(foldResult.thresholds.perCriterion);
      expect(Object.keys(thresholds.perCriterion).sort()).toEqual([
        'A1',
        'A2',
        'A3',
        'A4',
        'A5',
        'A6',
        'A7',
        'A8',
        'A9',
      ]);
    }
    // Every pair is predicted exactly once across the two test folds.
    const predicted = [0, 1].flatMap(
      (fold) =>
        JSON.parse(readFileSync(join(result.runDir, `fold_${fold}`, 'predictions.json'), 'utf8'))
          .test,
    );
    expect(predicted).toHaveLength(100 * 9);
    expect(
      new Set(
        predicted.map(
          (row: { postId: string; criterionId: string }) => `${row.postId}/${row.criterionId}`,
        ),
      ).size,
    ).toBe(900);
    // No post text in the saved predictions.
    expect(Object.keys(predicted[0]).sort()).toEqual(['criterionId', 'label', 'postId', 'score']);
  });

  test('emits progress events for both folds', () => {
    expect(
      events
        .filter((event) => event.type === 'fold-end')
        .map((event) => (event as { fold: number }).fold),
    ).toEqual([0, 1]);
    expect(events.some((event) => event.type === 'step')).toBe(true);
    expect(events.some((event) => event.type === 'evaluation')).toBe(true);
  });

  test('MLflow has the parent and two children with metrics, params, tags and artifacts', async () => {
    const client = new MlflowClient({ trackingUri: server.uri });
    const parent = await client.getRun(result.parentRunId!);
    expect(parent.info.status).toBe('FINISHED');
    expect(parent.params['training.lr']).toBe('0.001');
    expect(parent.tags['mentallam.dataset_hash']).toBe(result.datasetHash);
    expect(parent.metrics['pooled_f1']).toBe(result.pooled.f1);
    expect(parent.metrics['metric_mean_test_f1']).toBe(result.acrossFolds.test_f1!.mean);
    const children = await client.searchRuns({
      experimentIds: [parent.info.experimentId],
      filter: `tags.mlflow.parentRunId = '${parent.info.runId}'`,
    });
    expect(children.map((child) => child.info.runName).sort()).toEqual(['fold_0', 'fold_1']);
    for (const child of children) {
      expect(child.info.status).toBe('FINISHED');
      const fold = result.folds.find((entry) => entry.runId === child.info.runId)!;
      expect(child.metrics['test_f1']).toBe(fold.testMetrics['test_f1']);
      // One training loss per optimizer step, each a positive BCE value.
      const losses = await client.getMetricHistory(child.info.runId, 'train_loss');
      expect(losses.map((entry) => entry.step).sort((a, b) => a - b)).toEqual(
        Array.from({ length: fold.steps }, (_, i) => i + 1),
      );
      for (const entry of losses) expect(entry.value).toBeGreaterThan(0);
      const artifacts = (await client.listArtifacts(child.info.runId)).map((entry) => entry.path);
      expect(artifacts).toEqual(
        expect.arrayContaining(['best_adapter', 'plots', 'predictions.json', 'thresholds.json']),
      );
    }
    const parentArtifacts = (await client.listArtifacts(parent.info.runId)).map(
      (entry) => entry.path,
    );
    expect(parentArtifacts).toEqual(
      expect.arrayContaining(['config.yaml', 'folds', 'summary.json', 'manifest.json']),
    );
  });

  test('the best adapters load into a classifier', async () => {
    const classifier = await Classifier.load({
      modelDir: join(dir, 'model'),
      dora: {
        r: 8,
        alpha: 16,
        dropout: 0.05,
        targetModules: [...doraTargetModules],
        useRslora: false,
      },
      numLabels: 1,
      seed: 1,
    });
    try {
      await classifier.loadAdapter(result.folds[0]!.bestAdapterDir);
      await classifier.loadAdapter(result.folds[1]!.bestAdapterDir);
    } finally {
      classifier.dispose();
    }
  });

  test('aggregate and register on the real training output; the registered model answers infer', async () => {
    const aggregated = await aggregate({
      run: result.parentRunId!,
      trackingUri: server.uri,
      cwd: dir,
    });
    expect(aggregated.source).toBe('mlflow');
    expect(aggregated.loggedToMlflow).toBe(true);
    for (const file of [
      aggregated.files.aggregateJson,
      aggregated.files.summaryMd,
      aggregated.files.thresholdsJson,
      aggregated.files.reportHtml,
    ]) {
      expect(existsSync(file)).toBe(true);
    }
    const thresholds = JSON.parse(readFileSync(aggregated.files.thresholdsJson, 'utf8'));
    // The run-level file serves the ensemble: the mean of the folds' tuned thresholds.
    expect(thresholds.source).toBe('fold_mean');
    const foldGlobals = result.folds.map((fold) => fold.thresholds.global);
    expect(thresholds.global).toBeCloseTo(
      foldGlobals.reduce((sum, value) => sum + value, 0) / foldGlobals.length,
      12,
    );
    const client = new MlflowClient({ trackingUri: server.uri });
    const parentArtifacts = (await client.listArtifacts(result.parentRunId!)).map(
      (entry) => entry.path,
    );
    expect(parentArtifacts).toEqual(
      expect.arrayContaining(['summary.md', 'thresholds.json', 'report.html']),
    );

    const registered = await register({
      run: result.parentRunId!,
      trackingUri: server.uri,
      cwd: dir,
    });
    expect(registered.modelUri).toBe('models:/mentallama-criteria-cls@champion');
    const resolved = await client.resolveModelUri(registered.modelUri);
    expect(String(resolved.version)).toBe(registered.version);

    const scored = await infer({
      model: registered.modelUri,
      post: 'I have not slept properly for weeks and wake up at 3am every night.',
      overrides: ['model=tiny', `model.path=${join(dir, 'model')}`, 'logging.level=error'],
      env: { ...process.env, MLFLOW_TRACKING_URI: server.uri },
      cwd: dir,
      // Its own download cache: the shared one may hold another server's version 1.
      cacheDir: join(dir, 'infer-cache'),
    });
    expect(scored.predictions).toHaveLength(9);
    for (const prediction of scored.predictions) {
      expect(prediction.probability).toBeGreaterThanOrEqual(0);
      expect(prediction.probability).toBeLessThanOrEqual(1);
    }
  }, 300_000);
});
