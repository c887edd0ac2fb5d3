/**
 * The same seed and config on the CPU give identical fold metrics run to run, and resetting the
 * adapters of a loaded model gives the same result as loading it fresh.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { smallRunOverrides } from './helpers.js';

function overrides(dir: string, runName: string, folds: string): string[] {
  return smallRunOverrides(dir, runName, [
    'training.max_epochs=1',
    'training.micro_batch_size=16',
    'training.effective_batch_size=16',
    `training.folds=${folds}`,
  ]);
}

function foldMetrics(runDir: string, fold: number): Record<string, number> {
  return JSON.parse(readFileSync(join(runDir, `fold_${fold}`, 'metrics.json'), 'utf8')).test;
}

describe('reproducibility on the CPU', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mentallam-repro-'));

  test('two runs with the same seed give identical fold metrics and scores', async () => {
    const first = await trainFolds({ overrides: overrides(dir, 'a', '[0,1]'), cwd: dir });
    const second = await trainFolds({ overrides: overrides(dir, 'b', '[0,1]'), cwd: dir });
    for (const fold of [0, 1]) {
      expect(foldMetrics(second.runDir, fold)).toEqual(foldMetrics(first.runDir, fold));
      const scoresA = JSON.parse(
        readFileSync(join(first.runDir, `fold_${fold}`, 'predictions.json'), 'utf8'),
      );
      const scoresB = JSON.parse(
        readFileSync(join(second.runDir, `fold_${fold}`, 'predictions.json'), 'utf8'),
      );
      expect(scoresB).toEqual(scoresA);
    }
    expect(second.pooled).toEqual(first.pooled);
  }, 600_000);

  test('fold 1 after fold 0 in one process equals fold 1 alone (adapter reset = fresh load)', async () => {
    const both = await trainFolds({ overrides: overrides(dir, 'c', '[0,1]'), cwd: dir });
    const alone = await trainFolds({ overrides: overrides(dir, 'd', '[1]'), cwd: dir });
    expect(foldMetrics(alone.runDir, 1)).toEqual(foldMetrics(both.runDir, 1));
  }, 600_000);
});
