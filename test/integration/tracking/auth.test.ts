import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/infra/index.js';
import {
  MlflowClient,
  resolveTracking,
  startLocalServer,
  type LocalServer,
} from '../../../src/tracking/index.js';
import { mlflowBin, pythonBin, serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';
import { describeWithTool } from '../../describeWithTool.js';

// MLflow's basic-auth app needs Flask-WTF (`mlflow[auth]`); without it the server refuses to start.
const hasAuthExtra = (() => {
  try {
    execFileSync(pythonBin, ['-c', 'import flask_wtf'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const describeAuth = describeWithTool({
  tool: 'Flask-WTF in .venv',
  available: hasAuthExtra,
  install: 'it is in requirements/runtime.txt: npm run setup',
});

const password = 'password1234-Secret';
const work = tempDir('auth');
let server: LocalServer;
let port = 0;

describeAuth('basic auth against MLflow’s basic-auth app', () => {
  beforeAll(async () => {
    // MLflow 3.17 ships no default admin password: the config (or MLFLOW_AUTH_ADMIN_PASSWORD) sets it.
    const config = join(work, 'basic_auth.ini');
    writeFileSync(
      config,
      [
        '[mlflow]',
        'default_permission = READ',
        `database_uri = sqlite:///${join(work, 'basic_auth.db')}`,
        'admin_username = admin',
        `admin_password = ${password}`,
        'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
        '',
      ].join('\n'),
    );
    server = await startLocalServer({
      workDir: join(work, 'server'),
      mlflowBin,
      appName: 'basic-auth',
      startTimeoutMs: serverStartTimeoutMs,
      env: { MLFLOW_AUTH_CONFIG_PATH: config, MLFLOW_FLASK_SERVER_SECRET_KEY: 'test-secret-key' },
    });
    port = Number(new URL(server.uri).port);
  }, serverStartTimeoutMs + 10_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('credentials from the environment authenticate; none or wrong ones fail at once with 401', async () => {
    const env = {
      MLFLOW_TRACKING_URI: server.uri,
      MLFLOW_TRACKING_USERNAME: 'admin',
      MLFLOW_TRACKING_PASSWORD: password,
    };
    const client = MlflowClient.fromEnv(env);
    const experiment = await client.getOrCreateExperiment(uniqueName('auth'));
    const run = await client.createRun({
      experimentId: experiment.experimentId,
      runName: 'authed',
    });
    await client.logMetric(run.info.runId, 'm', 1, 0);
    const artifact = join(work, 'a.txt');
    writeFileSync(artifact, 'artifact through basic auth\n');
    await client.uploadArtifact(run.info.runId, artifact);
    expect((await client.listArtifacts(run.info.runId)).map((entry) => entry.path)).toEqual([
      'a.txt',
    ]);

    const anonymous = new MlflowClient({ trackingUri: server.uri });
    await expect(anonymous.getRun(run.info.runId)).rejects.toThrow(/HTTP 401/);
    const wrong = MlflowClient.fromEnv({ ...env, MLFLOW_TRACKING_PASSWORD: 'nope' });
    const started = Date.now();
    const error = await wrong.getRun(run.info.runId).then(
      () => undefined,
      (caught: Error) => caught,
    );
    expect(error?.message).toMatch(/HTTP 401/);
    expect(Date.now() - started).toBeLessThan(5_000);
    await Promise.all([client.close(), anonymous.close(), wrong.close()]);
  });

  test('credentials never appear in errors, logs, JSON or the resolved URI', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'debug',
      json: true,
      stream: new Writable({
        write(chunk, _encoding, callback) {
          lines.push(String(chunk));
          callback();
        },
      }),
    });
    const uriWithUserinfo = `http://admin:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    const tracking = await resolveTracking({
      enabled: true,
      trackingUri: uriWithUserinfo,
      workDir: join(work, 'unused'),
      logger,
      env: {},
      retryPolicy: { baseMs: 1, capMs: 5, maxAttempts: 2, retryableStatuses: [500, 503] },
    });
    if (tracking === null) throw new Error('tracking disabled');
    const { client } = tracking;
    expect(tracking.uri).toBe(`http://***@127.0.0.1:${port}/`);
    const experiment = await client.getOrCreateExperiment(uniqueName('redact'));
    const run = await client.createRun({ experimentId: experiment.experimentId, runName: 'r' });
    await client.logParams(run.info.runId, { p: '1' });
    const error = await client.logParams(run.info.runId, { p: '2' }).then(
      () => undefined,
      (caught: Error) => caught,
    );
    expect(error?.message).toMatch(/INVALID_PARAMETER_VALUE/);
    // A retried failure goes through the logger.
    await client.getRun('0'.repeat(32)).catch(() => undefined);
    const surfaces = [
      error?.message ?? '',
      error?.stack ?? '',
      JSON.stringify(error),
      JSON.stringify({ client }),
      inspect(client, { depth: 5 }),
      tracking.uri,
      lines.join(''),
    ];
    const basic = Buffer.from(`admin:${password}`).toString('base64');
    for (const surface of surfaces) {
      expect(surface).not.toContain(password);
      expect(surface).not.toContain(basic);
    }
    await tracking.close();
  });
});

test('resolveTracking: disabled → null', async () => {
  expect(await resolveTracking({ enabled: false, workDir: tempDir('off') })).toBeNull();
});
