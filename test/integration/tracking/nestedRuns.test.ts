import {
  InterruptedError,
  MlflowClient,
  errorTag,
  startLocalServer,
  withChildRun,
  withParentRun,
  type LocalServer,
} from '../../../src/tracking/index.js';
import { mlflowBin, runPython, serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';

interface PyRun {
  run_id: string;
  name: string;
  status: string;
  params: Record<string, string>;
  tags: Record<string, string>;
  history: Record<string, [number, number, number | null][]>;
}

const pyRunsScript = (experimentName: string) => `
import json, math, mlflow
from mlflow import MlflowClient
c = MlflowClient()
exp = c.get_experiment_by_name(${JSON.stringify(experimentName)})
runs = mlflow.search_runs([exp.experiment_id], output_format='list', order_by=['attributes.start_time ASC'])
out = []
for r in runs:
    hist = {k: [[m.step, m.timestamp, None if math.isnan(m.value) else m.value] for m in c.get_metric_history(r.info.run_id, k)] for k in r.data.metrics}
    out.append({'run_id': r.info.run_id, 'name': r.info.run_name, 'status': r.info.status,
                'params': r.data.params, 'tags': r.data.tags, 'history': hist})
print(json.dumps(out))
`;

let server: LocalServer;
let client: MlflowClient;

beforeAll(async () => {
  server = await startLocalServer({
    workDir: tempDir('nested'),
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
  });
  process.stdout.write(`[figures] local MLflow server start-up: ${server.startupMs} ms\n`);
  client = new MlflowClient({ trackingUri: server.uri });
}, serverStartTimeoutMs + 10_000);

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

test('a parent with two children is what MLflow’s Python client sees', async () => {
  const experimentName = uniqueName('cv');
  let parentId = '';
  const childIds: string[] = [];
  await withParentRun(
    client,
    {
      experimentName,
      runName: 'cv-parent',
      tags: { 'mentallam.kind': 'cv' },
      params: { training: { lr: 0.0002, epochs: 3 }, model: { name: 'tiny' } },
      sourceName: 'mentallam-train',
    },
    async (parent) => {
      parentId = parent.runId;
      for (const fold of [0, 1]) {
        await withChildRun(
          parent,
          { runName: `fold-${fold}`, tags: { fold: String(fold) }, params: { fold } },
          async (child) => {
            childIds.push(child.runId);
            await child.logMetrics([
              { key: 'train/loss', value: 1.5 - fold, step: 0, timestamp: 1000 },
              { key: 'train/loss', value: 0.5 - fold, step: 1, timestamp: 2000 },
              { key: 'train/loss', value: NaN, step: 2, timestamp: 3000 },
              { key: 'val/auc', value: 0.7 + fold / 10, step: 1, timestamp: 2000 },
            ]);
          },
        );
      }
      await parent.logMetric('cv/auc_mean', 0.75);
    },
  );

  const runs = await runPython<PyRun[]>(server.uri, pyRunsScript(experimentName));
  expect(runs).toHaveLength(3);
  const parent = runs.find((run) => run.run_id === parentId) as PyRun;
  expect(parent.status).toBe('FINISHED');
  expect(parent.params).toMatchObject({
    'training.lr': '0.0002',
    'training.epochs': '3',
    'model.name': 'tiny',
  });
  expect(parent.tags).toMatchObject({
    'mlflow.runName': 'cv-parent',
    'mlflow.source.name': 'mentallam-train',
    'mlflow.source.type': 'LOCAL',
    'mentallam.kind': 'cv',
  });
  expect(parent.tags['mlflow.user']).toBeTruthy();
  expect(parent.tags['mlflow.source.git.commit']).toMatch(/^[0-9a-f]{40}$/);
  expect(parent.tags['mlflow.parentRunId']).toBeUndefined();
  expect(parent.history['cv/auc_mean']).toHaveLength(1);

  for (const [fold, childId] of childIds.entries()) {
    const child = runs.find((run) => run.run_id === childId) as PyRun;
    expect(child.name).toBe(`fold-${fold}`);
    expect(child.status).toBe('FINISHED');
    expect(child.tags['mlflow.parentRunId']).toBe(parentId);
    expect(child.tags.fold).toBe(String(fold));
    expect(child.tags['mlflow.source.git.commit']).toBe(parent.tags['mlflow.source.git.commit']);
    expect(child.params).toEqual({ fold: String(fold) });
    expect(child.history['train/loss']).toEqual([
      [0, 1000, 1.5 - fold],
      [1, 2000, 0.5 - fold],
      [2, 3000, null],
    ]);
    expect(child.history['val/auc']).toEqual([[1, 2000, 0.7 + fold / 10]]);
  }

  // Our own client reads the same back (NaN decoded, children found through the parent tag).
  const children = await client.searchRuns({
    experimentIds: [runs[0] ? (await client.getRun(parentId)).info.experimentId : ''],
    filter: `tags.mlflow.parentRunId = '${parentId}'`,
    pageSize: 1,
  });
  expect(children.map((run) => run.info.runId).sort()).toEqual([...childIds].sort());
  const history = await client.getMetricHistory(childIds[0] as string, 'train/loss');
  expect(history.map((metric) => metric.value)).toEqual([1.5, 0.5, NaN]);
});

test('runs end FAILED with the error as a tag, or KILLED on an interrupt', async () => {
  const experimentName = uniqueName('status');
  let failedId = '';
  let killedId = '';
  let signalKilledId = '';
  let parentId = '';
  await expect(
    withParentRun(client, { experimentName, runName: 'parent' }, async (parent) => {
      parentId = parent.runId;
      await expect(
        withChildRun(parent, { runName: 'boom' }, async (run) => {
          failedId = run.runId;
          throw new Error('fold exploded');
        }),
      ).rejects.toThrow('fold exploded');
      const controller = new AbortController();
      await withChildRun(parent, { runName: 'aborted', signal: controller.signal }, async (run) => {
        signalKilledId = run.runId;
        controller.abort();
      });
      await withChildRun(parent, { runName: 'stopped' }, async (run) => {
        killedId = run.runId;
        throw new InterruptedError('SIGINT');
      });
    }),
  ).rejects.toThrow(InterruptedError);
  const failed = await client.getRun(failedId);
  expect(failed.info.status).toBe('FAILED');
  expect(failed.tags[errorTag]).toBe('Error: fold exploded');
  expect(failed.info.endTime).toBeGreaterThan(0);
  expect((await client.getRun(signalKilledId)).info.status).toBe('KILLED');
  expect((await client.getRun(killedId)).info.status).toBe('KILLED');
  expect((await client.getRun(parentId)).info.status).toBe('KILLED');
});

test('log-batch splits to MLflow limits; params truncated with a marker; experiments restored', async () => {
  const experiment = await client.getOrCreateExperiment(uniqueName('limits'));
  const run = await client.createRun({ experimentId: experiment.experimentId, runName: 'limits' });
  const params: Record<string, string> = {};
  for (let i = 0; i < 250; i++) params[`p${i}`] = `v${i}`;
  params.long = 'x'.repeat(7000);
  const metrics = Array.from({ length: 2500 }, (_, step) => ({
    key: 'm',
    value: step,
    step,
    timestamp: 1 + step,
  }));
  await client.logBatch(run.info.runId, { params, metrics, tags: { t: 'y' } });
  const got = await client.getRun(run.info.runId);
  expect(Object.keys(got.params)).toHaveLength(251);
  expect(got.params.long).toHaveLength(6000);
  expect(got.params.long?.endsWith('...[truncated]')).toBe(true);
  expect(await client.getMetricHistory(run.info.runId, 'm')).toHaveLength(2500);
  // Same params again: a no-op (write-once, same value); a changed value names MLflow's error code.
  await client.logParams(run.info.runId, { p1: 'v1' });
  await expect(client.logParams(run.info.runId, { p1: 'changed' })).rejects.toThrow(
    /INVALID_PARAMETER_VALUE/,
  );
  await expect(client.logMetric(run.info.runId, 'bad(key)', 1)).rejects.toThrow(
    /Invalid metric key/,
  );

  // A deleted experiment is restored by get-or-create rather than failing on its reserved name.
  await fetch(`${server.uri}/api/2.0/mlflow/experiments/delete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ experiment_id: experiment.experimentId }),
  });
  const restored = await client.getOrCreateExperiment(experiment.name);
  expect(restored.experimentId).toBe(experiment.experimentId);
  expect((await client.getExperimentByName(experiment.name))?.lifecycleStage).toBe('active');

  await client.deleteRun(run.info.runId);
  expect((await client.getRun(run.info.runId)).info.lifecycleStage).toBe('deleted');
});

test('figures: log-batch throughput against the local server', async () => {
  const experiment = await client.getOrCreateExperiment(uniqueName('throughput'));
  const run = await client.createRun({
    experimentId: experiment.experimentId,
    runName: 'throughput',
  });
  const total = 20_000;
  const start = Date.now();
  for (let offset = 0; offset < total; offset += 1000) {
    await client.logMetrics(
      run.info.runId,
      Array.from({ length: 1000 }, (_, i) => ({
        key: `m${i % 10}`,
        value: Math.random(),
        step: offset + i,
        timestamp: 1_700_000_000_000 + offset + i,
      })),
    );
  }
  const seconds = (Date.now() - start) / 1000;
  process.stdout.write(
    `[figures] log-batch throughput: ${total} metrics in ${seconds.toFixed(2)} s = ${Math.round(total / seconds)} metrics/s (batches of 1000)\n`,
  );
  expect(await client.getMetricHistory(run.info.runId, 'm0')).toHaveLength(total / 10);
});
