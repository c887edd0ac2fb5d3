/**
 * kill -9 in the middle of a fold, then `--resume`, against a real MLflow server: the killed
 * process saved no checkpoint, so the fold starts again from step 0, and it does so in a NEW
 * child run (the old one ends FAILED, tagged with its successor). MLflow never holds two points
 * for one step of a run, and the console says that the fold restarts and why. The training is the
 * built CLI in a child process, killed with SIGKILL.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { MlflowClient, startLocalServer, type LocalServer } from '../../../src/tracking/index.js';
import { runCliProcess, startCli } from '../cliProcess.js';
import { mlflowBin, serverStartTimeoutMs, tempDir, uniqueName } from '../tracking/helpers.js';
import { smallRunOverrides } from './helpers.js';

// One libtorch thread: on a shared machine two spin-waiting threads slow a step down many times.
const env = { OMP_NUM_THREADS: '1' };

describe('kill -9 mid-fold, then --resume, with MLflow', () => {
  let server: LocalServer;
  let client: MlflowClient;
  const dir = tempDir('kill-resume');

  beforeAll(async () => {
    server = await startLocalServer({
      workDir: join(dir, 'mlflow'),
      mlflowBin,
      startTimeoutMs: serverStartTimeoutMs,
    });
    client = new MlflowClient({ trackingUri: server.uri });
  }, serverStartTimeoutMs + 10_000);

  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  test('the restarted fold logs into a new child run; no step has two points', async () => {
    const runDir = join(dir, 'run');
    const overrides = smallRunOverrides(dir, 'run', [
      'training.max_steps=8',
      'training.eval_every_steps=2',
      'logging.mlflow.enabled=true',
      `logging.mlflow.tracking_uri=${server.uri}`,
      `logging.mlflow.experiment_name=${uniqueName('kill-resume')}`,
      'logging.progress.mode=lines',
      'logging.level=warn',
    ]);
    const training = startCli(overrides, { cwd: dir, env, bin: 'mentallam-train' });
    try {
      await training.waitForStderr(/fold 0 step 4: validation/);
    } finally {
      training.child.kill('SIGKILL');
    }
    expect((await training.exited).signal).toBe('SIGKILL');

    const state = JSON.parse(readFileSync(join(runDir, 'run-state.json'), 'utf8'));
    const killedRunId: string = state.folds['0'].runId;
    const logged = await client.getMetricHistory(killedRunId, 'train_loss');
    expect(logged.length).toBeGreaterThanOrEqual(4);

    const resumed = await runCliProcess(['train', '--resume', runDir], { cwd: dir, env });
    expect(resumed.code).toBe(0);

    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
    const fold0 = summary.folds.find((fold: { fold: number }) => fold.fold === 0);
    expect(fold0.runId).not.toBe(killedRunId);
    const history = await client.getMetricHistory(fold0.runId, 'train_loss');
    expect(history.map((point) => point.step)).toEqual(
      Array.from({ length: fold0.steps }, (_, i) => i + 1),
    );

    // The console said why the fold started again.
    expect(resumed.stderr).toMatch(
      new RegExp(
        `fold 0 restarts from step 0: the run that trained it ended without saving a checkpoint ` +
          `\\(killed\\?\\); its MLflow run ${killedRunId} ends FAILED and fold 0 logs to a new run`,
      ),
    );
    const killed = await client.getRun(killedRunId);
    expect(killed.info.status).toBe('FAILED');
    expect(killed.tags['mentallam.superseded_by']).toBe(fold0.runId);

    // Across every run of the experiment: never two points for one (metric, step).
    const parent = await client.getRun(summary.parentRunId);
    expect(parent.info.status).toBe('FINISHED');
    const children = await client.searchRuns({
      experimentIds: [parent.info.experimentId],
      filter: `tags.mlflow.parentRunId = '${summary.parentRunId}'`,
    });
    expect(children.map((child) => child.info.runName).sort()).toEqual([
      'fold_0',
      'fold_0',
      'fold_1',
    ]);
    for (const child of children) {
      for (const key of ['train_loss', 'val_f1']) {
        const steps = (await client.getMetricHistory(child.info.runId, key)).map((p) => p.step);
        expect({ run: child.info.runId, key, steps }).toEqual({
          run: child.info.runId,
          key,
          steps: [...new Set(steps)].sort((a, b) => a - b),
        });
      }
    }
  }, 900_000);
});
