/**
 * Out-of-memory back-off: when a train step fails with the addon's out-of-memory error (code
 * ERR_NATIVE_OOM), the fold trainer drops the partial gradients, halves the micro-batch, doubles
 * accumulation and retries, and training ends where it would have without the error. No GPU
 * exists here, so a wrapper around the real classifier raises that error for micro-batches
 * larger than 4; any other error is not retried.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { TrainEvent } from '../../../src/engine/index.js';
import { packExamples, type ModelBatch } from '../../../src/engine/examples.js';
import {
  outOfMemoryCode,
  predictIndices,
  trainFold,
  type FoldModel,
} from '../../../src/engine/foldTrainer.js';
import { createRng } from '../../../src/infra/index.js';
import { Classifier } from '../../../src/native.js';
import { foldFilesIn, smallDora, smallFoldOptions } from './helpers.js';

const dora = smallDora;
const options = smallFoldOptions;

/** The error the addon throws when an allocation fails (its message is libtorch's). */
function outOfMemory(): Error {
  return Object.assign(new Error('CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)'), {
    code: outOfMemoryCode,
  });
}

/**
 * A classifier whose "GPU" runs out of memory on the second micro-batch of 8 (after the first
 * one's gradients were accumulated, so the retry must discard them) and on any later one over 4.
 */
function smallGpu(model: Classifier, calls: number[], error = outOfMemory): FoldModel {
  return {
    trainStep: async (batch: ModelBatch, stepOptions) => {
      calls.push(batch.batchSize);
      if (batch.batchSize > 4 && calls.length >= 2) throw error();
      return model.trainStep(batch, stepOptions);
    },
    predictProba: (batch) => model.predictProba(batch),
    saveAdapter: (dir) => model.saveAdapter(dir),
    loadAdapter: (dir) => model.loadAdapter(dir),
    discardGradients: () => model.discardGradients(),
  };
}

describe('out-of-memory back-off', () => {
  test('halves the micro-batch, doubles accumulation and trains to the same weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-oom-'));
    const modelDir = join(dir, 'model');
    await Classifier.createRandom(
      {
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        vocab_size: 300,
        num_labels: 1,
        pad_token_id: 0,
      },
      modelDir,
      3,
    );
    const rng = createRng(11);
    const sequences = Array.from({ length: 48 }, () =>
      Array.from({ length: 5 + Math.floor(rng() * 16) }, () => 3 + Math.floor(rng() * 296)),
    );
    const labels = Uint8Array.from(sequences, () => (rng() < 0.3 ? 1 : 0));
    const data = {
      examples: packExamples(sequences),
      labels,
      trainIndices: Array.from({ length: 40 }, (_, i) => i),
      validationIndices: Array.from({ length: 8 }, (_, i) => 40 + i),
    };
    const score = () => ({ value: 0, metrics: {} });
    const validation = data.validationIndices;

    const reference = await Classifier.load({ modelDir, dora, numLabels: 1, seed: 5 });
    await trainFold(
      reference,
      data,
      { ...options, outOfMemoryBackoff: false },
      foldFilesIn(join(dir, 'a')),
      score,
      {
        fold: 0,
        seed: 9,
      },
    );
    const expected = await predictIndices(reference, data.examples, validation, options);
    reference.dispose();

    const model = await Classifier.load({ modelDir, dora, numLabels: 1, seed: 5 });
    const calls: number[] = [];
    const events: TrainEvent[] = [];
    const result = await trainFold(
      smallGpu(model, calls),
      data,
      options,
      foldFilesIn(join(dir, 'b')),
      score,
      {
        fold: 0,
        seed: 9,
        onEvent: (event) => events.push(event),
      },
    );
    const backedOff = await predictIndices(model, data.examples, validation, options);
    model.dispose();

    expect(result.steps).toBe(3);
    const backoffs = events.filter((event) => event.type === 'out-of-memory');
    expect(backoffs).toEqual([
      {
        type: 'out-of-memory',
        fold: 0,
        step: 0,
        microBatchSize: 4,
        accumulationSteps: 4,
        message: expect.stringMatching(/micro-batches of 8; retrying with 4 and 4 accumulation/),
      },
    ]);
    // The first micro-batch of 8 fitted, the second did not; every retry fitted in 4.
    expect(calls.slice(0, 2)).toEqual([8, 8]);
    expect(calls.slice(2).every((size) => size <= 4)).toBe(true);
    for (let i = 0; i < expected.length; i++) {
      expect(Math.abs(backedOff[i]! - expected[i]!)).toBeLessThan(1e-5);
    }

    // The back-off keys on the error's code, not on its text: the same message without the
    // code is another failure, and stops the fold.
    const other = await Classifier.load({ modelDir, dora, numLabels: 1, seed: 5 });
    const uncoded = () => new Error('CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)');
    try {
      await expect(
        trainFold(smallGpu(other, [], uncoded), data, options, foldFilesIn(join(dir, 'c')), score, {
          fold: 0,
          seed: 9,
        }),
      ).rejects.toThrow(/^CUDA out of memory/);
    } finally {
      other.dispose();
    }
  }, 120_000);
});
