/**
 * A NaN/Inf training loss stops its fold with a clear error, keeps what was written, and the run
 * goes on with the other folds; pooled metrics then cover the finished folds only.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { trainFolds, type TrainEvent } from '../../../src/engine/index.js';
import { packExamples, type ModelBatch } from '../../../src/engine/examples.js';
import {
  NonFiniteLossError,
  trainFold,
  type FoldModel,
  type FoldTrainingOptions,
} from '../../../src/engine/foldTrainer.js';
import { Classifier } from '../../../src/native.js';
import { foldFilesIn, smallDora, smallFoldOptions, smallRunOverrides } from './helpers.js';

function overrides(dir: string, runName: string): string[] {
  return smallRunOverrides(dir, runName, [
    'training.max_epochs=1',
    'training.micro_batch_size=16',
    'training.effective_batch_size=16',
    'training.folds=[0,1]',
  ]);
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

const foldOptions: FoldTrainingOptions = {
  ...smallFoldOptions,
  effectiveBatchSize: 8,
  inferenceBatchSize: 8,
  outOfMemoryBackoff: false,
};

describe('a NaN/Inf training loss', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mentallam-nan-'));

  // NaN/Inf cannot be produced on purpose through the config (the schema bounds training.lr), so
  // these two tests raise the fold trainer's own error from a step event; the third test shows the
  // fold trainer raising it on a real non-finite loss.
  const failOnStep = (folds: number[]) => (event: TrainEvent) => {
    if (event.type === 'step' && folds.includes(event.fold) && event.step === 2) {
      throw new NonFiniteLossError(event.fold, 2);
    }
  };

  test('when every fold fails the run fails with each reason; the run files stay', async () => {
    const events: TrainEvent[] = [];
    const run = trainFolds({
      overrides: overrides(dir, 'all-failed'),
      cwd: dir,
      onEvent: (event) => {
        events.push(event);
        failOnStep([0, 1])(event);
      },
    });
    await expect(run).rejects.toThrow(
      /^every fold failed: fold 0: the training loss became NaN\/Inf at step 2; stopping this fold.*; fold 1: /,
    );
    const runDir = join(dir, 'all-failed');
    for (const file of ['config.yaml', 'overrides.yaml', 'manifest.json', 'run-state.json']) {
      expect(existsSync(join(runDir, file))).toBe(true);
    }
    const state = readJson(join(runDir, 'run-state.json'));
    expect(state.folds['0'].status).toBe('failed');
    expect(state.folds['1'].status).toBe('failed');
    expect(state.folds['1'].error).toMatch(/^fold 1: the training loss became NaN\/Inf/);
    expect(events.filter((event) => event.type === 'fold-failed').map((e) => e.fold)).toEqual([
      0, 1,
    ]);
  }, 600_000);

  test('one failed fold does not stop the others; the summary says which failed', async () => {
    const result = await trainFolds({
      overrides: overrides(dir, 'partial'),
      cwd: dir,
      onEvent: failOnStep([0]),
    });
    expect(result.failedFolds).toEqual([
      { fold: 0, step: 2, runId: null, message: expect.stringMatching(/^fold 0: .* step 2;/) },
    ]);
    expect(result.folds.map((fold) => fold.fold)).toEqual([1]);
    const summary = readJson(result.summaryPath);
    expect(summary.failedFolds).toHaveLength(1);
    expect(summary.folds).toHaveLength(1);
    // Pooled over the one finished fold = that fold's own test F1 at its tuned thresholds.
    expect(result.pooled['f1']).toBeCloseTo(result.folds[0]!.testMetrics['test_f1']!, 10);
    const state = readJson(join(result.runDir, 'run-state.json'));
    expect(state.folds['0'].status).toBe('failed');
    expect(state.folds['1'].status).toBe('done');
  }, 600_000);

  test('the fold trainer stops on a non-finite loss from the model', async () => {
    const modelDir = join(dir, 'small');
    await Classifier.createRandom(
      { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, vocab_size: 300 },
      modelDir,
      3,
    );
    const model = await Classifier.load({ modelDir, dora: smallDora, numLabels: 1, seed: 5 });
    let calls = 0;
    // The real model, whose loss turns NaN on the second step (as a diverging run's does).
    const diverging: FoldModel = {
      trainStep: async (batch: ModelBatch, stepOptions) => {
        const result = await model.trainStep(batch, stepOptions);
        calls += 1;
        return calls === 2 ? { ...result, loss: Number.NaN } : result;
      },
      predictProba: (batch) => model.predictProba(batch),
      saveAdapter: (target) => model.saveAdapter(target),
      loadAdapter: (source) => model.loadAdapter(source),
      discardGradients: () => model.discardGradients(),
    };
    const sequences = Array.from({ length: 40 }, (_, i) => [3 + i, 4 + i, 5 + i, 6 + i]);
    const data = {
      examples: packExamples(sequences),
      labels: Uint8Array.from(sequences, (_, i) => i % 2),
      trainIndices: Array.from({ length: 32 }, (_, i) => i),
      validationIndices: Array.from({ length: 8 }, (_, i) => 32 + i),
    };
    const run = trainFold(
      diverging,
      data,
      foldOptions,
      foldFilesIn(join(dir, 'fold'), 3),
      () => ({ value: 0, metrics: {} }),
      {
        fold: 3,
        seed: 9,
      },
    );
    await expect(run).rejects.toThrow(
      'fold 3: the training loss became NaN/Inf at step 2; stopping this fold (lower training.lr?)',
    );
    await expect(run).rejects.toBeInstanceOf(NonFiniteLossError);
    model.dispose();
  }, 120_000);
});
