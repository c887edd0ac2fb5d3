import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import type { RetryPolicy } from '../../../src/infra/index.js';
import {
  MlflowClient,
  SpoolingTracker,
  spoolDoneFileName,
  spoolFileName,
  startLocalServer,
  syncSpool,
  type LocalServer,
} from '../../../src/tracking/index.js';
import { mlflowBin, runPython, serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';

const fastRetry: RetryPolicy = {
  baseMs: 20,
  capMs: 100,
  maxAttempts: 3,
  retryableStatuses: [408, 429, 500, 502, 503, 504],
};

const work = tempDir('faults');
const serverDir = join(work, 'server');
let server: LocalServer;
let port: number;
const started: LocalServer[] = [];

async function start(): Promise<LocalServer> {
  const instance = await startLocalServer({
    workDir: serverDir,
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
    ...(port === undefined ? {} : { port }),
  });
  started.push(instance);
  return instance;
}

beforeAll(async () => {
  server = await start();
  port = Number(new URL(server.uri).port);
}, serverStartTimeoutMs + 10_000);

afterAll(async () => {
  for (const instance of [...started].reverse()) await instance.stop();
  // The restarted server replaced the killed one: the last user out must stop it, not leak it.
  for (const instance of started) expect(processAlive(instance.pid)).toBe(false);
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('server killed mid-logging → spool → restart → replay: every metric exactly once', async () => {
  const client = new MlflowClient({ trackingUri: server.uri, retryPolicy: fastRetry });
  const runDir = join(work, 'run');
  const tracker = new SpoolingTracker(client, { runDir, probeIntervalMs: 0 });
  const experiment = await tracker.getOrCreateExperiment(uniqueName('faults'));
  const run = await tracker.createRun({ experimentId: experiment.experimentId, runName: 'fold-0' });
  const runId = run.info.runId;
  const steps = 100;
  for (let step = 0; step < steps; step += 10) {
    if (step === 40) {
      // Killed hard, as by the OOM killer or a crash: no graceful shutdown.
      process.kill(-server.pid, 'SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    await tracker.logBatch(runId, {
      metrics: Array.from({ length: 10 }, (_, i) => ({
        key: 'train/loss',
        value: 1 / (step + i + 1),
        step: step + i,
      })),
      ...(step === 50 ? { params: { lr: '0.001' }, tags: { phase: 'after-kill' } } : {}),
    });
  }
  await tracker.setTag(runId, 'note', 'logged while the server was down');
  await tracker.updateRun(runId, { status: 'FINISHED', endTime: Date.now() });
  expect(tracker.pendingCount).toBeGreaterThanOrEqual(8);
  const spooled = readFileSync(join(runDir, spoolFileName), 'utf8').trim().split('\n');
  expect(spooled.length).toBe(tracker.pendingCount);

  // The same sqlite DB and port, as after a restart of the machine's server.
  server = await start();
  expect(server.uri).toBe(`http://127.0.0.1:${port}`);
  await tracker.flush();
  expect(tracker.pendingCount).toBe(0);

  // Replaying again (e.g. `mentallam sync`) does nothing: the done file records every entry.
  expect(await syncSpool(runDir, client)).toEqual({ replayed: 0, rejected: 0, remaining: 0 });
  // Even with the done file lost (a crash before its fsync), metrics are not duplicated.
  rmSync(join(runDir, spoolDoneFileName));
  const again = await syncSpool(runDir, client);
  expect(again.replayed).toBe(spooled.length);

  const seen = await runPython<{
    history: [number, number][];
    status: string;
    params: Record<string, string>;
    tags: Record<string, string>;
  }>(
    server.uri,
    `
import json
from mlflow import MlflowClient
c = MlflowClient()
r = c.get_run(${JSON.stringify(runId)})
h = c.get_metric_history(${JSON.stringify(runId)}, "train/loss")
print(json.dumps({"history": [[m.step, m.value] for m in h], "status": r.info.status, "params": r.data.params, "tags": r.data.tags}))
`,
  );
  const stepsSeen = seen.history.map(([step]) => step).sort((a, b) => a - b);
  expect(stepsSeen).toEqual(Array.from({ length: steps }, (_, i) => i));
  for (const [step, value] of seen.history) expect(value).toBeCloseTo(1 / (step + 1), 12);
  expect(seen.status).toBe('FINISHED');
  expect(seen.params).toEqual({ lr: '0.001' });
  expect(seen.tags).toMatchObject({
    phase: 'after-kill',
    note: 'logged while the server was down',
  });
  await client.close();
}, 300_000);

test('the spooling tracker still surfaces requests MLflow refuses', async () => {
  const client = new MlflowClient({ trackingUri: server.uri, retryPolicy: fastRetry });
  const tracker = new SpoolingTracker(client, { runDir: join(work, 'run-400') });
  const experiment = await tracker.getOrCreateExperiment(uniqueName('refused'));
  const run = await tracker.createRun({ experimentId: experiment.experimentId, runName: 'x' });
  await tracker.logBatch(run.info.runId, { params: { a: '1' } });
  await expect(tracker.logBatch(run.info.runId, { params: { a: '2' } })).rejects.toThrow(
    /INVALID_PARAMETER_VALUE/,
  );
  expect(existsSync(join(work, 'run-400', spoolFileName))).toBe(false);
  await client.close();
});

interface Proxy {
  uri: string;
  /** Requests seen per "METHOD path". */
  seen: string[];
  fail503: number;
  /** Paths whose next request is forwarded and then answered by dropping the connection. */
  dropAfterForward: Set<string>;
  /** fail503 is set to this when such a dropped answer happens (an outage right after it). */
  outageAfterDrop: number;
  close(): Promise<void>;
}

async function startProxy(upstream: string): Promise<Proxy> {
  const proxy: Proxy = {
    uri: '',
    seen: [],
    fail503: 0,
    dropAfterForward: new Set(),
    outageAfterDrop: 0,
    close: async () => undefined,
  };
  // An upstream failure answers 502 rather than leaving a rejected promise nobody awaits.
  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '/').split('?')[0] as string;
    proxy.seen.push(`${req.method} ${path}`);
    if (proxy.fail503 > 0) {
      proxy.fail503--;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error_code: 'TEMPORARILY_UNAVAILABLE', message: 'database is locked' }),
      );
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    const answer = await request(`${upstream}${req.url}`, {
      method: req.method as 'GET',
      headers,
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    const body = Buffer.from(await answer.body.arrayBuffer());
    if (proxy.dropAfterForward.delete(path)) {
      // The server did the work but the answer never arrives: an ambiguous failure.
      proxy.fail503 = proxy.outageAfterDrop;
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.statusCode, {
      'content-type': String(answer.headers['content-type'] ?? 'application/json'),
    });
    res.end(body);
  };
  const http: Server = createServer((req, res) => {
    forward(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  proxy.uri = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  proxy.close = () => new Promise((resolve) => http.close(() => resolve()));
  return proxy;
}

test('a run created while the server is away waits for it; an answer lost before the outage never yields two runs', async () => {
  const proxy = await startProxy(server.uri);
  const client = new MlflowClient({ trackingUri: proxy.uri, retryPolicy: fastRetry });
  const tracker = new SpoolingTracker(client, {
    runDir: join(work, 'run-wait'),
    healthPollMs: 50,
  });
  try {
    const experiment = await tracker.getOrCreateExperiment(uniqueName('wait'));
    // The create reaches the server, its answer is lost, and the server then stays away through
    // the client's retries (and a few health probes): the tracker waits instead of failing.
    proxy.dropAfterForward.add('/api/2.0/mlflow/runs/create');
    proxy.outageAfterDrop = 6;
    const run = await tracker.createRun({
      experimentId: experiment.experimentId,
      runName: 'fold_1',
    });
    expect(proxy.fail503).toBe(0);
    const runs = await client.searchRuns({ experimentIds: [experiment.experimentId] });
    expect(runs.map((r) => r.info.runId)).toEqual([run.info.runId]);
    expect(proxy.seen.filter((s) => s === 'POST /api/2.0/mlflow/runs/create')).toHaveLength(1);
  } finally {
    await client.close();
    await proxy.close();
  }
});

test('retries: 503 twice then success; a 400 fails at once with MLflow’s error code; lost create answers never duplicate runs', async () => {
  const proxy = await startProxy(server.uri);
  const retries: number[] = [];
  const client = new MlflowClient({
    trackingUri: proxy.uri,
    retryPolicy: fastRetry,
    onRetry: (info) => retries.push(info.attempt),
  });
  try {
    const name = uniqueName('retry');
    proxy.fail503 = 2;
    const experiment = await client.getOrCreateExperiment(name);
    expect(retries).toEqual([1, 2]);
    expect(proxy.seen.slice(0, 3)).toEqual(
      Array(3).fill('GET /api/2.0/mlflow/experiments/get-by-name'),
    );

    const run = await client.createRun({ experimentId: experiment.experimentId, runName: 'once' });
    await client.logParams(run.info.runId, { lr: '0.001' });
    proxy.seen.length = 0;
    retries.length = 0;
    const error = await client.logParams(run.info.runId, { lr: '0.1' }).then(
      () => undefined,
      (caught: Error) => caught,
    );
    expect(error?.message).toMatch(/INVALID_PARAMETER_VALUE \(HTTP 400\)/);
    expect(proxy.seen).toEqual(['POST /api/2.0/mlflow/runs/log-batch']);
    expect(retries).toEqual([]);

    // The create reaches the server but its answer is lost; the retry finds the run by its request id.
    proxy.dropAfterForward.add('/api/2.0/mlflow/runs/create');
    const second = await client.createRun({
      experimentId: experiment.experimentId,
      runName: 'twice',
    });
    const runs = await client.searchRuns({ experimentIds: [experiment.experimentId] });
    expect(runs.map((r) => r.info.runId).sort()).toEqual(
      [run.info.runId, second.info.runId].sort(),
    );
    expect(retries.length).toBe(1);

    // Same for a model version.
    await client.createRegisteredModel(name);
    proxy.dropAfterForward.add('/api/2.0/mlflow/model-versions/create');
    // Registering needs only the source URI; the OSS registry does not check that files exist.
    const version = await client.createModelVersion({
      name,
      runId: second.info.runId,
      artifactPath: 'model',
    });
    expect(version.version).toBe('1');
    expect((await client.searchModelVersions(name)).map((v) => v.version)).toEqual(['1']);
  } finally {
    await client.close();
    await proxy.close();
  }
});
