// Model resolution from MLflow (a training run by id, one fold's run, a registered version by
// alias), the inference run that --log-mlflow writes, and the bench's metrics and tags, against a
// real local MLflow server. The model itself is the fake scorer: what is tested here is which
// adapter and thresholds arrive, and what reaches MLflow.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';

import { configToYaml, type Config } from '../../../src/config/index.js';
import { bench } from '../../../src/bench/index.js';
import { infer } from '../../../src/infer/index.js';
import {
  MlflowClient,
  startLocalServer,
  type LocalServer,
  type ResolvedTracking,
} from '../../../src/tracking/index.js';
import {
  fakeLoader,
  aggregateFile,
  makeAdapter,
  makeBaseDir,
  newLog,
  testConfig,
  thresholdsFile,
} from '../../unit/infer/fixtures.js';
import { mlflowBin, serverStartTimeoutMs, tempDir, uniqueName } from '../tracking/helpers.js';

let server: LocalServer;
let client: MlflowClient;
let tracking: ResolvedTracking;
let config: Config;
let baseDir: string;
let parentRunId: string;
const childRunIds: string[] = [];
const work = tempDir('infer-mlflow');
const experimentName = uniqueName('infer');
const modelName = uniqueName('mentallama-criteria-cls');
const foldOffsets = [-0.4, 0.3, 0.8];

beforeAll(async () => {
  server = await startLocalServer({
    workDir: join(work, 'server'),
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
  });
  client = new MlflowClient({ trackingUri: server.uri });
  tracking = { client, uri: server.uri, close: async () => undefined };
  baseDir = await makeBaseDir(join(work, 'base'));
  config = await testConfig([`logging.mlflow.experiment_name=${experimentName}`]);

  // A finished training run as trainFolds and aggregation leave it in MLflow.
  const experiment = await client.getOrCreateExperiment(experimentName);
  const parent = await client.createRun({
    experimentId: experiment.experimentId,
    runName: 'train',
  });
  parentRunId = parent.info.runId;
  const local = join(work, 'local-run');
  mkdirSync(local, { recursive: true });
  writeFileSync(join(local, 'config.yaml'), configToYaml(config));
  // Aggregation's choice (made on validation) is what infer follows.
  writeFileSync(join(local, 'aggregate.json'), aggregateFile(2));
  await client.uploadArtifact(parentRunId, join(local, 'config.yaml'));
  await client.uploadArtifact(parentRunId, join(local, 'aggregate.json'));
  for (const [fold, offset] of foldOffsets.entries()) {
    const child = await client.createRun({
      experimentId: experiment.experimentId,
      runName: `fold_${fold}`,
      tags: { 'mlflow.parentRunId': parentRunId, 'mentallam.fold': String(fold) },
    });
    childRunIds.push(child.info.runId);
    const dir = join(local, `fold_${fold}`);
    makeAdapter(join(dir, 'best_adapter'), baseDir, offset);
    writeFileSync(join(dir, 'thresholds.json'), thresholdsFile(0.4 + fold / 10, {}, fold));
    await client.uploadArtifacts(child.info.runId, join(dir, 'best_adapter'), 'best_adapter');
    await client.uploadArtifact(child.info.runId, join(dir, 'thresholds.json'));
  }
  // The registered version: best adapter + thresholds + config under registered_model/.
  const registered = join(local, 'registered_model');
  makeAdapter(join(registered, 'best_adapter'), baseDir, foldOffsets[2]!);
  writeFileSync(join(registered, 'thresholds.json'), thresholdsFile(0.55, { A9: 0.2 }));
  writeFileSync(join(registered, 'config.yaml'), configToYaml(config));
  await client.uploadArtifacts(parentRunId, registered, 'registered_model');
  await client.createRegisteredModel(modelName);
  const version = await client.createModelVersion({
    name: modelName,
    runId: parentRunId,
    artifactPath: 'registered_model',
  });
  await client.setModelAlias(modelName, 'champion', version.version);
}, serverStartTimeoutMs + 60_000);

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

const post = 'I have thoughts about not wanting to be here';

async function single(options: {
  run?: string;
  model?: string;
  criterion?: string;
  ensemble?: boolean;
}) {
  const log = newLog();
  const result = await infer({
    config,
    tracking,
    cacheDir: join(work, 'cache'),
    post,
    criterion: options.criterion ?? 'A9',
    loadModel: fakeLoader(log),
    ...options,
  });
  return { result, log, p: result.predictions[0]! };
}

test('models:/name@alias downloads the version: its adapter, thresholds and config', async () => {
  const { result, log, p } = await single({ model: `models:/${modelName}@champion` });
  expect(result.model).toMatchObject({
    kind: 'registry',
    modelName,
    modelVersion: '1',
    runId: parentRunId,
  });
  expect(p).toMatchObject({ criterion: 'A9', threshold: 0.2, thresholdOrigin: 'per_criterion' });
  expect(log.adapters).toHaveLength(1);
  expect(log.adapters[0]).toContain(
    join('models', encodeURIComponent(modelName), '1', 'best_adapter'),
  );
  expect(Number(readFileSync(join(log.adapters[0]!, 'adapter_model.safetensors'), 'utf8'))).toBe(
    0.8,
  );
  expect(log.merges).toBe(1);
  // A second resolution reads the cache.
  const again = await single({ model: `models:/${modelName}/1`, criterion: 'A1' });
  expect(again.p.threshold).toBe(0.55);
});

test('a training run id: the aggregated best fold, or the fold named; a fold run id', async () => {
  const best = await single({ run: parentRunId });
  expect(best.result.model).toMatchObject({ kind: 'run', runId: parentRunId, folds: [2] });
  expect(best.p.threshold).toBeCloseTo(0.6, 10);
  const fold0 = await single({ run: `${parentRunId}/0` });
  expect(fold0.result.model.folds).toEqual([0]);
  expect(fold0.p.threshold).toBeCloseTo(0.4, 10);
  const child = await single({ run: childRunIds[1]! });
  expect(child.result.model.folds).toEqual([1]);
  expect(child.p.threshold).toBeCloseTo(0.5, 10);
  expect(
    Number(readFileSync(join(child.log.adapters[0]!, 'adapter_model.safetensors'), 'utf8')),
  ).toBe(0.3);
});

test('ensemble over a run id: the mean of the three fold probabilities', async () => {
  const ensemble = await single({ run: parentRunId, ensemble: true });
  expect(ensemble.result.model.folds).toEqual([0, 1, 2]);
  const folds = await Promise.all([0, 1, 2].map((f) => single({ run: `${parentRunId}/${f}` })));
  const mean = folds.reduce((s, f) => s + f.p.probability, 0) / 3;
  expect(ensemble.p.probability).toBeCloseTo(mean, 6);
  expect(new Set(folds.map((f) => f.p.probability)).size).toBe(3);
});

test('--log-mlflow: counts, latency and hashed ids are logged; no post text anywhere', async () => {
  const lines = [
    JSON.stringify({ id: 'post-17', post, criterion: 'A9' }),
    '{"id": "broken"',
    JSON.stringify({ post: 'Everything tastes like nothing, I stopped eating' }),
  ];
  const output = new PassThrough();
  output.resume();
  const result = await infer({
    config,
    tracking,
    cacheDir: join(work, 'cache'),
    model: `models:/${modelName}@champion`,
    input: Readable.from([lines.join('\n')]),
    output,
    logMlflow: true,
    loadModel: fakeLoader(),
  });
  expect(result.runId).toMatch(/^[0-9a-f]{32}$/);
  const run = await client.getRun(result.runId!);
  expect(run.info.status).toBe('FINISHED');
  expect(run.metrics).toMatchObject({ records: 3, pairs: 10, failed_records: 1 });
  expect(run.metrics.latency_ms_per_pair_p95).toBe(result.latency.msPerPairP95);
  expect(run.tags).toMatchObject({
    'mentallam.kind': 'inference',
    'mentallam.model.name': modelName,
    'mentallam.model.version': '1',
  });
  expect(run.params).toMatchObject({ model_kind: 'registry', ensemble: 'false' });
  const file = join(work, 'ids.txt');
  await client.downloadArtifact(result.runId!, 'input_ids.sha256.txt', file);
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  // The broken line's id is unreadable (invalid JSON), so it has no digest.
  expect(readFileSync(file, 'utf8')).toBe(`${sha('post-17')}\n-\n-\n`);
  const everything = JSON.stringify(run) + readFileSync(file, 'utf8');
  expect(everything).not.toContain('thoughts');
  expect(everything).not.toContain('tastes');
});

test('bench: latency_cpu_ms_p50/_p95 logged, allow_slow reason as a tag, histogram artifact', async () => {
  const benchConfig = await testConfig([
    `logging.mlflow.experiment_name=${experimentName}`,
    'bench.lengths=[16,32]',
    'bench.warmup=1',
    'bench.runs=4',
    'bench.allow_slow.reason="tiny CI machine"',
  ]);
  let t = 0;
  let reads = 0;
  const result = await bench({
    config: benchConfig,
    tracking,
    base: baseDir,
    outDir: join(work, 'bench'),
    logMlflow: true,
    loadModel: fakeLoader(),
    now: () => {
      const v = t;
      if (reads++ % 2 === 0) t += 1250;
      return v;
    },
  });
  expect(result.exitCode).toBe(0);
  const run = await client.getRun(result.runId!);
  expect(run.metrics).toMatchObject({
    latency_cpu_ms_p50: 1250,
    latency_cpu_ms_p95: 1250,
    latency_cpu_ms_p99_len16: 1250,
  });
  expect(run.tags).toMatchObject({
    'mentallam.kind': 'bench',
    'mentallam.bench.gate': 'allowed_slow',
    'mentallam.bench.allow_slow_reason': 'tiny CI machine',
  });
  const artifacts = (await client.listArtifacts(result.runId!, 'bench')).map((a) => a.path).sort();
  expect(artifacts).toEqual([
    'bench/bench.json',
    'bench/latency_histogram.png',
    'bench/latency_histogram.svg',
  ]);
});

test('an unknown alias fails with MLflow’s error', async () => {
  await expect(single({ model: `models:/${modelName}@nobody` })).rejects.toThrow(
    /nobody|RESOURCE_DOES_NOT_EXIST|not found/i,
  );
});
