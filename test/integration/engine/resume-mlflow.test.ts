/**
 * Resume with tracking on: the interrupted run's parent and fold runs end KILLED, and `--resume`
 * continues logging into those same runs (no new parent, no second child for the interrupted
 * fold), which then end FINISHED with the fold's test metrics. Against a real MLflow server.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { InterruptedError } from '../../../src/tracking/index.js';
import { tempDir, uniqueName, useMlflowServer } from '../tracking/helpers.js';
import { smallRunOverrides } from './helpers.js';

describe('interrupt and resume with MLflow', () => {
  const dir = tempDir('resume-mlflow');
  const mlflow = useMlflowServer(dir);

  test('the resumed run continues the same parent and fold runs', async () => {
    const overrides = smallRunOverrides(dir, 'run', [
      'training.max_epochs=2',
      'training.micro_batch_size=8',
      'training.effective_batch_size=16',
      'training.eval_every_steps=4',
      'logging.mlflow.enabled=true',
      `logging.mlflow.tracking_uri=${mlflow.server.uri}`,
      `logging.mlflow.experiment_name=${uniqueName('resume')}`,
    ]);
    const abort = new AbortController();
    let steps = 0;
    const interrupted = trainFolds({
      overrides,
      cwd: dir,
      signal: abort.signal,
      onEvent: (event) => {
        if (event.type === 'step' && event.fold === 1 && ++steps === 3) abort.abort();
      },
    });
    await expect(interrupted).rejects.toBeInstanceOf(InterruptedError);
    const runDir = join(dir, 'run');
    const state = JSON.parse(readFileSync(join(runDir, 'run-state.json'), 'utf8'));
    const parentRunId: string = state.parentRunId;
    const fold1RunId: string = state.folds['1'].runId;
    expect((await mlflow.client.getRun(parentRunId)).info.status).toBe('KILLED');
    expect((await mlflow.client.getRun(fold1RunId)).info.status).toBe('KILLED');
    expect((await mlflow.client.getRun(state.folds['0'].runId)).info.status).toBe('FINISHED');

    const resumed = await trainFolds({ overrides, cwd: dir, resume: true });
    expect(resumed.parentRunId).toBe(parentRunId);
    expect(resumed.folds.map((fold) => fold.runId)).toEqual([state.folds['0'].runId, fold1RunId]);

    const parent = await mlflow.client.getRun(parentRunId);
    expect(parent.info.status).toBe('FINISHED');
    expect(parent.metrics['pooled_f1']).toBe(resumed.pooled['f1']);
    const children = await mlflow.client.searchRuns({
      experimentIds: [parent.info.experimentId],
      filter: `tags.mlflow.parentRunId = '${parentRunId}'`,
    });
    expect(children.map((child) => child.info.runName).sort()).toEqual(['fold_0', 'fold_1']);
    const fold1 = await mlflow.client.getRun(fold1RunId);
    expect(fold1.info.status).toBe('FINISHED');
    expect(fold1.metrics['test_f1']).toBe(resumed.folds[1]!.testMetrics['test_f1']);
    expect(fold1.metrics['best_step']).toBe(resumed.folds[1]!.bestStep);
    // The steps before and after the interrupt are both in the one child run.
    const history = await mlflow.client.getMetricHistory(fold1RunId, 'train_loss');
    expect(history.map((point) => point.step)).toEqual(
      Array.from({ length: resumed.folds[1]!.steps }, (_, i) => i + 1),
    );
  }, 900_000);
});
