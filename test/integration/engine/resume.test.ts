/**
 * A run interrupted mid-fold (an AbortSignal acts like Ctrl-C) saves a checkpoint, and resuming
 * it ends with the same final metrics as a run that was never interrupted.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { InterruptedError } from '../../../src/tracking/index.js';
import { smallRunOverrides } from './helpers.js';

function overrides(dir: string, runName: string): string[] {
  return smallRunOverrides(dir, runName, [
    'training.max_epochs=2',
    'training.micro_batch_size=8',
    'training.effective_batch_size=16',
    'training.eval_every_steps=4',
  ]);
}

function foldMetrics(runDir: string, fold: number): Record<string, number> {
  return JSON.parse(readFileSync(join(runDir, `fold_${fold}`, 'metrics.json'), 'utf8')).test;
}

describe('interrupt and resume', () => {
  test('a run interrupted in fold 1 and resumed equals an uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-resume-'));
    const reference = await trainFolds({ overrides: overrides(dir, 'reference'), cwd: dir });

    const abort = new AbortController();
    let steps = 0;
    const interruptedRun = trainFolds({
      overrides: overrides(dir, 'interrupted'),
      cwd: dir,
      signal: abort.signal,
      onEvent: (event) => {
        // Fold 1, in the middle of its first epoch (not on an evaluation step).
        if (event.type === 'step' && event.fold === 1 && ++steps === 3) abort.abort();
      },
    });
    await expect(interruptedRun).rejects.toBeInstanceOf(InterruptedError);
    const runDir = join(dir, 'interrupted');
    expect(existsSync(join(runDir, 'fold_1', 'checkpoint', 'trainer_state.json'))).toBe(true);
    const state = JSON.parse(readFileSync(join(runDir, 'run-state.json'), 'utf8'));
    expect(state.folds['0'].status).toBe('done');
    // Ctrl-C saved a checkpoint: the fold is 'interrupted' at the checkpoint's step, and the
    // resume continues from it (in the same tracking run).
    const trainerState = JSON.parse(
      readFileSync(join(runDir, 'fold_1', 'checkpoint', 'trainer_state.json'), 'utf8'),
    );
    expect(state.folds['1']).toMatchObject({
      status: 'interrupted',
      checkpointStep: trainerState.step,
    });
    expect(trainerState.step).toBeGreaterThan(0);

    const resumed = await trainFolds({
      overrides: overrides(dir, 'interrupted'),
      cwd: dir,
      resume: true,
    });
    expect(existsSync(join(runDir, 'fold_1', 'checkpoint'))).toBe(false);
    expect(foldMetrics(runDir, 0)).toEqual(foldMetrics(reference.runDir, 0));
    expect(foldMetrics(runDir, 1)).toEqual(foldMetrics(reference.runDir, 1));
    expect(resumed.pooled).toEqual(reference.pooled);
  }, 600_000);
});
