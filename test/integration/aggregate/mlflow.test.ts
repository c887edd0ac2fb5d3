/**
 * aggregate and register against a real MLflow server: a parent run and two fold child runs
 * logged with the tracking module the way the training logs them, fixture artifacts and a
 * fake-but-valid peft adapter; then the summary artifacts, thresholds.json, the registry version
 * and the models:/name@champion alias are checked on the server.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { aggregate, register, validateInferenceThresholds } from '../../../src/aggregate/index.js';
import { createLogger } from '../../../src/infra/index.js';
import {
  MlflowClient,
  startLocalServer,
  withChildRun,
  withParentRun,
  type LocalServer,
} from '../../../src/tracking/index.js';
import {
  configYaml,
  datasetHash,
  fixtureFolds,
  writeFixtureRun,
} from '../../unit/aggregate/fixtures.js';
import { mlflowBin, serverStartTimeoutMs, tempDir, uniqueName } from '../tracking/helpers.js';

const quiet = createLogger({ level: 'error' });
const twoFoldConfig = configYaml.replace('n_splits: 3', 'n_splits: 2');
const folds = fixtureFolds().slice(0, 2);

let server: LocalServer;
let client: MlflowClient;
let work: string;
let runDir: string;
let parentRunId: string;
let experimentId: string;
const childRunIds: Record<number, string> = {};

beforeAll(async () => {
  work = tempDir('aggregate-mlflow');
  server = await startLocalServer({
    workDir: join(work, 'server'),
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
  });
  client = new MlflowClient({ trackingUri: server.uri });
  runDir = await writeFixtureRun(join(work, 'outputs', 'run'), { folds, config: twoFoldConfig });
  // As trainFolds: parent with config/manifest/folds artifacts, one child per fold, summary last.
  await withParentRun(
    client,
    {
      experimentName: uniqueName('aggregate'),
      runName: 'mentallam-synthetic-tiny-llama',
      tags: { 'mentallam.dataset_hash': datasetHash, 'mentallam.version': '0.1.0' },
      params: { seed: 7, 'model.name': 'tiny-llama' },
      logger: quiet,
    },
    async (parent) => {
      parentRunId = parent.runId;
      experimentId = parent.experimentId;
      await parent.logArtifact(join(runDir, 'config.yaml'));
      await parent.logArtifact(join(runDir, 'overrides.yaml'));
      await parent.logArtifact(join(runDir, 'manifest.json'));
      for (const fold of folds) {
        await withChildRun(
          parent,
          {
            runName: `fold_${fold.fold}`,
            tags: { 'mentallam.fold': String(fold.fold) },
            params: { fold: fold.fold },
            logger: quiet,
          },
          async (child) => {
            childRunIds[fold.fold] = child.runId;
            const foldDir = join(runDir, `fold_${fold.fold}`);
            await child.logMetrics(
              Object.entries(fold.test_metrics).map(([key, value]) => ({ key, value })),
            );
            for (const name of ['predictions.json', 'thresholds.json', 'metrics.json'])
              await child.logArtifact(join(foldDir, name));
            await child.logArtifacts(join(foldDir, 'best_adapter'), 'best_adapter');
          },
        );
      }
      await writeFixtureRun(runDir, {
        folds,
        config: twoFoldConfig,
        parentRunId: parent.runId,
        runIds: childRunIds,
      });
      await parent.logArtifact(join(runDir, 'summary.json'));
    },
  );
}, serverStartTimeoutMs + 60_000);

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

test('aggregate by parent run id: child runs from MLflow, files attached, metrics logged', async () => {
  const result = await aggregate({
    run: parentRunId,
    trackingUri: server.uri,
    cwd: work,
    logger: quiet,
  });
  expect(result.source).toBe('mlflow');
  expect(result.loggedToMlflow).toBe(true);
  // The training's run directory is here and names this parent: the files go there.
  expect(result.outDir).toBe(runDir);
  const summary = result.summary;
  expect(summary.foldsAggregated).toEqual([0, 1]);
  expect(summary.childRuns.map((c) => c.runId)).toEqual([childRunIds[0], childRunIds[1]]);
  expect(summary.childRuns[1]!.url).toBe(
    `${server.uri}/#/experiments/${experimentId}/runs/${childRunIds[1]}`,
  );
  // folds 0 and 1: test_f1 0.5 and 0.8; pooled TP 3, FP 2, FN 1 -> 6/9
  expect(summary.pooled.f1).toBeCloseTo(6 / 9, 12);
  expect(summary.bestFold).toBe(0);
  expect(summary.warnings).toEqual([]);

  const parent = await client.getRun(parentRunId);
  expect(parent.metrics.metric_mean_test_f1).toBeCloseTo(0.65, 12);
  expect(parent.metrics.metric_std_test_f1).toBeCloseTo(Math.sqrt(0.045), 12);
  expect(parent.metrics.pooled_f1).toBeCloseTo(6 / 9, 12);
  expect(parent.tags['mentallam.best_fold']).toBe('0');
  expect(parent.tags['mentallam.best_fold_run_id']).toBe(childRunIds[0]);
  const listed = (await client.listArtifacts(parentRunId, '', { recursive: true })).map(
    (entry) => entry.path,
  );
  for (const name of [
    'summary.json',
    'aggregate.json',
    'summary.md',
    'thresholds.json',
    'report.html',
  ])
    expect(listed).toContain(name);
  expect(listed).toContain('plots/cv_pr_curves.svg');
  expect(listed).toContain('plots/cv_calibration.png');

  const downloaded = join(work, 'download', 'thresholds.json');
  await client.downloadArtifact(parentRunId, 'thresholds.json', downloaded);
  const thresholds = validateInferenceThresholds(JSON.parse(readFileSync(downloaded, 'utf8')));
  expect(thresholds.source).toBe('fold_mean');
  expect(thresholds.global).toBeCloseTo(0.55, 12);
  expect(thresholds.bestFold).toMatchObject({ fold: 0, runId: childRunIds[0], global: 0.5 });
  expect(thresholds.provenance).toMatchObject({
    parentRunId,
    childRunIds: { '0': childRunIds[0], '1': childRunIds[1] },
    datasetHash,
    bestFold: 0,
  });
  expect(thresholds.provenance.configHash).toMatch(/^sha256:[0-9a-f]{64}$/);
});

test('register: best fold adapter with thresholds and config as a version; alias resolves', async () => {
  const name = uniqueName('mentallama-criteria-cls');
  const result = await register({
    run: parentRunId,
    name,
    trackingUri: server.uri,
    cwd: work,
    logger: quiet,
  });
  expect(result).toMatchObject({
    name,
    version: '1',
    alias: 'champion',
    modelUri: `models:/${name}@champion`,
    parentRunId,
    bestFold: 0,
    bestFoldRunId: childRunIds[0],
    datasetHash,
    created: true,
  });
  expect(result.source).toMatch(new RegExp(`/${parentRunId}/artifacts/registered_model$`));

  const resolved = await client.resolveModelUri(`models:/${name}@champion`);
  expect(resolved.version).toBe('1');
  expect(resolved.runId).toBe(parentRunId);
  expect(resolved.tags).toMatchObject({
    'mentallam.dataset_hash': datasetHash,
    'mentallam.fold': '0',
    'mentallam.child_run_id': childRunIds[0],
    'mentallam.parent_run_id': parentRunId,
    'metric.pooled_f1': String(6 / 9),
    'metric.mean_test_f1': String(0.65),
  });

  const files = (await client.listArtifacts(parentRunId, 'registered_model', { recursive: true }))
    .filter((entry) => !entry.isDir)
    .map((entry) => entry.path)
    .sort();
  expect(files).toEqual(
    [
      'adapter_config.json',
      'adapter_model.safetensors',
      'base_model.json',
      'config.yaml',
      'thresholds.json',
    ].map((file) => `registered_model/${file}`),
  );
  const local = join(work, 'download', 'registered_thresholds.json');
  await client.downloadArtifact(parentRunId, 'registered_model/thresholds.json', local);
  const registered = validateInferenceThresholds(JSON.parse(readFileSync(local, 'utf8')));
  expect(registered).toMatchObject({
    source: 'best_fold',
    global: 0.5,
    perCriterion: { A1: 0.5, A2: 0.4 },
  });
  const weights = join(work, 'download', 'adapter_model.safetensors');
  await client.downloadArtifact(parentRunId, 'registered_model/adapter_model.safetensors', weights);
  expect(readFileSync(weights, 'utf8')).toBe('fake-weights-0');

  // Registering the same run again reuses the version instead of adding a duplicate.
  const again = await register({
    run: runDir,
    name,
    trackingUri: server.uri,
    cwd: work,
    logger: quiet,
  });
  expect(again).toMatchObject({ version: '1', created: false });
  expect((await client.searchModelVersions(name)).length).toBe(1);
});

test('aggregate by run directory logs to the parent run named in its summary.json', async () => {
  const result = await aggregate({
    run: runDir,
    trackingUri: server.uri,
    cwd: work,
    logger: quiet,
  });
  expect(result.source).toBe('run-dir');
  expect(result.loggedToMlflow).toBe(true);
  expect(result.summary.experimentId).toBe(experimentId);
  expect(result.summary.childRuns[0]!.url).toContain(`/runs/${childRunIds[0]}`);
});

test('MLflow unreachable: the run directory naming the parent is read instead', async () => {
  const result = await aggregate({
    run: parentRunId,
    trackingUri: 'http://127.0.0.1:9',
    cwd: work,
    searchRoot: join(work, 'outputs'),
    logger: quiet,
  });
  expect(result.source).toBe('run-dir');
  expect(result.loggedToMlflow).toBe(false);
  expect(result.summary.pooled.f1).toBeCloseTo(6 / 9, 12);
  expect(result.summary.warnings.join('\n')).toMatch(/MLflow (unavailable|not reachable)/);
});
