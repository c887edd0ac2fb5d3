import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { resolveTracking, serverInfoFileName } from '../../../src/tracking/index.js';
import { mlflowBin, serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';

async function healthy(uri: string): Promise<boolean> {
  try {
    const response = await request(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

test(
  'two concurrent invocations share one local server; the last one out stops it',
  async () => {
    const workDir = tempDir('local');
    const options = {
      enabled: true,
      workDir,
      env: {},
      localServer: { mlflowBin, startTimeoutMs: serverStartTimeoutMs },
    };
    const [first, second] = await Promise.all([resolveTracking(options), resolveTracking(options)]);
    if (
      first === null ||
      second === null ||
      first.server === undefined ||
      second.server === undefined
    )
      throw new Error('expected local servers');
    expect(first.uri).toBe(second.uri);
    expect(first.server.pid).toBe(second.server.pid);
    expect([first.server.reused, second.server.reused].sort()).toEqual([false, true]);
    const info = JSON.parse(readFileSync(join(workDir, serverInfoFileName), 'utf8'));
    expect(info).toMatchObject({ pid: first.server.pid, uri: first.uri, host: '127.0.0.1' });
    expect(info.backendStoreUri).toBe(`sqlite:///${join(workDir, 'mlflow.db')}`);

    // Both write to the same store through the same server.
    const experiment = await first.client.getOrCreateExperiment(uniqueName('shared'));
    expect((await second.client.getExperimentByName(experiment.name))?.experimentId).toBe(
      experiment.experimentId,
    );
    const run = await second.client.createRun({
      experimentId: experiment.experimentId,
      runName: 'r',
    });
    expect(run.info.artifactUri).toMatch(/^mlflow-artifacts:\//);

    await first.close();
    expect(await healthy(second.uri)).toBe(true);
    await second.close();
    expect(await healthy(second.uri)).toBe(false);
    expect(existsSync(join(workDir, serverInfoFileName))).toBe(false);
  },
  serverStartTimeoutMs * 2,
);

test(
  'a sqlite: tracking URI is served by a local server over that database',
  async () => {
    const workDir = tempDir('sqlite');
    const dbPath = join(workDir, 'custom', 'runs.db');
    mkdirSync(join(workDir, 'custom'), { recursive: true });
    const tracking = await resolveTracking({
      enabled: true,
      trackingUri: `sqlite:///${dbPath}`,
      workDir: join(workDir, 'server'),
      env: {},
      localServer: { mlflowBin, startTimeoutMs: serverStartTimeoutMs },
    });
    if (tracking === null) throw new Error('expected tracking');
    try {
      await tracking.client.getOrCreateExperiment(uniqueName('db'));
      expect(existsSync(dbPath)).toBe(true);
    } finally {
      await tracking.close();
    }
  },
  serverStartTimeoutMs + 30_000,
);
