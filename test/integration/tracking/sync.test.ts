/**
 * `mentallam sync` (issue 16 item 1): a spool written while server A was down, replayed with
 * MLFLOW_TRACKING_URI pointing at a fresh server B (or a wiped database), must stop before sending
 * anything, keep the spool untouched, name B and the missing run, and exit non-zero; the same spool
 * then replays completely into A. A call A refuses for good is recorded as rejected and stays
 * visible in `sync --status`; nothing else is marked done without the server accepting it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../../src/cli/index.js';
import type { RetryPolicy } from '../../../src/infra/index.js';
import {
  MlflowClient,
  SpoolingTracker,
  spoolDoneFileName,
  spoolFileName,
  startLocalServer,
  type LocalServer,
} from '../../../src/tracking/index.js';
import {
  mlflowBin,
  runPython,
  serverStartTimeoutMs,
  startTcpForwarder,
  tempDir,
  uniqueName,
} from './helpers.js';

const fastRetry: RetryPolicy = {
  baseMs: 20,
  capMs: 100,
  maxAttempts: 2,
  retryableStatuses: [408, 429, 500, 502, 503, 504],
};

const work = tempDir('sync');
const started: LocalServer[] = [];

function startServer(name: string): Promise<LocalServer> {
  return startLocalServer({
    workDir: join(work, name),
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
  }).then((server) => {
    started.push(server);
    return server;
  });
}

afterAll(async () => {
  for (const server of started.reverse()) await server.stop();
});

async function cli(argv: string[], trackingUri?: string) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
  const env: NodeJS.ProcessEnv =
    trackingUri === undefined ? {} : { MLFLOW_TRACKING_URI: trackingUri };
  const code = await runCli(argv, { stdout, stderr, env });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

test('sync against the wrong server stops before replaying, keeps the spool, exits non-zero; the right server then gets everything once', async () => {
  const serverA = await startServer('a');
  // Server A is reached through a port that can go away and come back, as a restarted server does.
  const a = await startTcpForwarder(serverA.uri);
  const runDir = join(work, 'run');
  const artifact = join(work, 'notes.txt');
  writeFileSync(artifact, 'logged while the server was down\n');

  const clientA = new MlflowClient({ trackingUri: a.uri, retryPolicy: fastRetry });
  const tracker = new SpoolingTracker(clientA, { runDir, probeIntervalMs: 60_000 });
  const experiment = await tracker.getOrCreateExperiment(uniqueName('sync'));
  const run = await tracker.createRun({ experimentId: experiment.experimentId, runName: 'fold_0' });
  const runId = run.info.runId;
  const losses = (from: number) =>
    Array.from({ length: 10 }, (_, i) => ({
      key: 'train/loss',
      value: 1 / (from + i + 1),
      step: from + i,
    }));
  await tracker.logBatch(runId, { metrics: losses(0), params: { lr: '0.001' } });

  // Server A goes away; everything from here on is spooled.
  await a.pause();
  await tracker.logBatch(runId, { metrics: losses(10) });
  await tracker.logBatch(runId, { metrics: losses(20) });
  // A param whose value changed: MLflow will refuse it for good (params are write-once).
  await tracker.logBatch(runId, { params: { lr: '0.1' } });
  await tracker.uploadArtifact(runId, artifact, 'notes');
  await tracker.setTag(runId, 'note', 'spooled');
  await tracker.updateRun(runId, { status: 'FINISHED', endTime: Date.now() });
  expect(tracker.pendingCount).toBe(6);
  await clientA.close();
  const spoolPath = join(runDir, spoolFileName);
  const donePath = join(runDir, spoolDoneFileName);
  const spoolBefore = readFileSync(spoolPath, 'utf8');

  // A fresh server B (as with a wrong MLFLOW_TRACKING_URI, or a wiped database).
  const serverB = await startServer('b');
  const wrong = await cli(['sync', runDir], serverB.uri);
  expect(wrong.code).not.toBe(0);
  expect(wrong.stderr).toContain(serverB.uri);
  expect(wrong.stderr).toContain(runId);
  expect(readFileSync(spoolPath, 'utf8')).toBe(spoolBefore);
  expect(existsSync(donePath)).toBe(false);
  expect(wrong.stderr).toContain(a.uri);
  // Nothing was created on B either.
  const clientB = new MlflowClient({ trackingUri: serverB.uri });
  expect(await clientB.searchRuns({ experimentIds: ['0'], runViewType: 'ALL' })).toEqual([]);
  expect(await clientB.getExperimentByName(experiment.name)).toBeUndefined();
  await clientB.close();

  // With A still away, sync says so and keeps everything.
  const away = await cli(['sync', runDir], a.uri);
  expect(away.code).not.toBe(0);
  expect(away.stderr).toMatch(new RegExp(`${a.uri}.*unreachable`));
  expect(readFileSync(spoolPath, 'utf8')).toBe(spoolBefore);
  expect(existsSync(donePath)).toBe(false);

  // --status needs no server and shows what waits.
  const status = await cli(['sync', '--status', runDir]);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/6 pending/);
  expect(status.stdout).toContain(spoolPath);

  // The right server, back: everything but the refused param arrives.
  await a.resume();
  const right = await cli(['sync', runDir], a.uri);
  expect(right.stderr).toMatch(/INVALID_PARAMETER_VALUE/);
  expect(right.code).toBe(0);
  expect(JSON.parse(right.stdout)).toMatchObject({ replayed: 5, rejected: 1, remaining: 0 });

  const seen = await runPython<{
    steps: number[];
    status: string;
    params: Record<string, string>;
    tags: Record<string, string>;
    artifacts: string[];
  }>(
    serverA.uri,
    `
import json
from mlflow import MlflowClient
c = MlflowClient()
r = c.get_run(${JSON.stringify(runId)})
h = c.get_metric_history(${JSON.stringify(runId)}, "train/loss")
print(json.dumps({"steps": sorted(m.step for m in h), "status": r.info.status,
  "params": r.data.params, "tags": r.data.tags,
  "artifacts": [f.path for f in c.list_artifacts(${JSON.stringify(runId)}, "notes")]}))
`,
  );
  expect(seen.steps).toEqual(Array.from({ length: 30 }, (_, i) => i));
  expect(seen.status).toBe('FINISHED');
  expect(seen.params).toEqual({ lr: '0.001' });
  expect(seen.tags.note).toBe('spooled');
  expect(seen.artifacts).toEqual(['notes/notes.txt']);

  // The refused entry stays visible, with MLflow's reason; a second sync sends nothing again.
  const after = await cli(['sync', '--status', runDir]);
  expect(after.stdout).toMatch(/0 pending/);
  expect(after.stdout).toMatch(/1 rejected/);
  expect(after.stdout).toMatch(/logBatch.*INVALID_PARAMETER_VALUE/);
  const again = await cli(['sync', runDir], a.uri);
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ replayed: 0, rejected: 0, remaining: 0 });
  await a.close();
}, 600_000);
