// GPU memory, measured with the CUDA caching allocator's own statistics (cudaMemory()):
// - dispose() gives the model's memory back: allocated and reserved return to where they were;
// - a REAL out-of-memory error (the allocator capped with testing.cudaSetMemoryFraction, a
//   micro-batch too large for the cap) makes the engine's fold trainer halve the micro-batch,
//   free the cache and finish the step, ending where an uncapped run ends.
// Both need CUDA; on the CPU dry run they are skipped with that reason.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { TrainEvent } from '../../src/engine/index.js';
import { packExamples } from '../../src/engine/examples.js';
import {
  predictIndices,
  trainFold,
  type FoldTrainingOptions,
} from '../../src/engine/foldTrainer.js';
import { createRng } from '../../src/infra/index.js';
import {
  Classifier,
  cudaMemory,
  nativeInfo,
  testing,
  type CudaMemoryStats,
} from '../../src/native/index.js';
import { RunStore } from '../../src/run/index.js';
import { dora } from '../parity/native/helpers.js';
import { cudaIndex, device, MiB, onCuda, report } from './gpuEnv.js';

const skip = onCuda ? false : 'needs CUDA: the caching allocator statistics exist on a GPU only';
const DORA = dora(8, 16);

let work: string;
before(async () => {
  if (onCuda) assert.ok(nativeInfo().cudaAvailable, 'the addon sees no CUDA device');
  work = await mkdtemp(join(tmpdir(), 'mentallam-gpu-memory-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function stats(): CudaMemoryStats {
  const cuda = cudaMemory();
  assert.ok(cuda, 'the addon was built without CUDA');
  return cuda.memoryStats(cudaIndex);
}

function mib(bytes: number): number {
  return Math.round((bytes / MiB) * 10) / 10;
}

/** Rows of `length` random ids in [3, vocab), labels about half ones. */
function randomExamples(count: number, length: number, vocab: number, seed: number) {
  const rng = createRng(seed);
  const sequences = Array.from({ length: count }, () =>
    Array.from({ length }, () => 3 + Math.floor(rng() * (vocab - 3))),
  );
  return {
    examples: packExamples(sequences),
    labels: Uint8Array.from(sequences, () => (rng() < 0.5 ? 1 : 0)),
  };
}

function fullBatch(ids: number[][], labels: number[]) {
  const seqLen = ids[0]!.length;
  return {
    inputIds: Int32Array.from(ids.flat()),
    attentionMask: new Uint8Array(ids.length * seqLen).fill(1),
    batchSize: ids.length,
    seqLen,
    labels: Int32Array.from(labels),
  };
}

describe(`GPU memory on ${device}`, () => {
  test('dispose() returns the model memory to where it was', { skip }, async () => {
    const modelDir = join(work, 'dispose-model');
    // About 30 M parameters: 60 MB of bf16 weights, far above the allocator's granularity.
    await Classifier.createRandom(
      {
        vocab_size: 8000,
        hidden_size: 1024,
        intermediate_size: 2816,
        num_hidden_layers: 2,
        num_attention_heads: 8,
        num_key_value_heads: 8,
        pad_token_id: 0,
      },
      modelDir,
      1,
    );
    const rng = createRng(2);
    const ids = Array.from({ length: 4 }, () =>
      Array.from({ length: 64 }, () => 3 + Math.floor(rng() * 7990)),
    );
    const batch = fullBatch(ids, [0, 1, 0, 1]);
    // A first cycle leaves what stays for the process (cuBLAS workspaces, the CUDA RNG state).
    const warm = await Classifier.load({ modelDir, dora: DORA, seed: 0, device });
    await warm.trainStep(batch, { lr: 1e-3 });
    warm.dispose();
    const before = stats();

    const clf = await Classifier.load({ modelDir, dora: DORA, seed: 0, device });
    const info = clf.info();
    assert.equal(info.dtype, 'bfloat16', 'CUDA defaults to a bf16 base');
    const loaded = stats();
    await clf.trainStep(batch, { lr: 1e-3 });
    const trained = stats();
    clf.dispose();
    const after = stats();
    report('dispose() returns GPU memory (MiB)', {
      'allocated before': mib(before.allocated),
      'allocated loaded': mib(loaded.allocated),
      'allocated after a step': mib(trained.allocated),
      'allocated after dispose': mib(after.allocated),
      'reserved before': mib(before.reserved),
      'reserved after a step': mib(trained.reserved),
      'reserved after dispose': mib(after.reserved),
      'parameter bytes (info)': mib(info.parameterBytes),
    });
    // The statistics see the model: at least its weights were allocated on load.
    assert.ok(loaded.allocated - before.allocated >= 0.9 * info.parameterBytes);
    assert.ok(trained.allocated > loaded.allocated, 'optimizer state and adapters grow it');
    // Everything the model held is back: allocated exactly, reserved within a 2 MiB segment.
    assert.equal(after.allocated, before.allocated);
    assert.ok(after.reserved <= before.reserved + 2 * MiB, 'dispose left cached blocks reserved');
  });

  test(
    'a real out-of-memory error: the fold trainer halves the micro-batch and finishes',
    { skip },
    async () => {
      const cuda = cudaMemory()!;
      const modelDir = join(work, 'oom-model');
      const config = {
        vocab_size: 1000,
        hidden_size: 1024,
        intermediate_size: 2816,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        num_key_value_heads: 8,
        num_labels: 1,
        pad_token_id: 0,
      };
      await Classifier.createRandom(config, modelDir, 3);
      const SEQ = 256;
      const data = randomExamples(40, SEQ, config.vocab_size, 11);
      const foldData = {
        ...data,
        trainIndices: Array.from({ length: 32 }, (_, i) => i),
        validationIndices: Array.from({ length: 8 }, (_, i) => 32 + i),
      };
      // fp32, so that the backed-off run can be compared with the plain one at 1e-4.
      const load = () =>
        Classifier.load({ modelDir, dora: DORA, numLabels: 1, seed: 5, device, dtype: 'float32' });
      const options: FoldTrainingOptions = {
        lr: 1e-3,
        weightDecay: 0,
        maxEpochs: 1,
        maxSteps: null,
        microBatchSize: 16,
        effectiveBatchSize: 16,
        warmupRatio: 0,
        lrSchedule: 'constant',
        maxGradNorm: 1,
        evalEverySteps: 0,
        earlyStopping: { metric: 'f1', mode: 'max', patience: 5, minDelta: 0 },
        posWeight: null,
        lengthBucketing: false,
        inferenceBatchSize: 8,
        padTokenId: 0,
        paddingSide: 'right',
        outOfMemoryBackoff: true,
      };
      const score = () => ({ value: 0, metrics: {} });

      // The reference: the same fold, uncapped, without back-off.
      const reference = await load();
      await trainFold(
        reference,
        foldData,
        { ...options, outOfMemoryBackoff: false },
        new RunStore(join(work, 'oom-a')).fold(0),
        score,
        { fold: 0, seed: 9 },
      );
      const expected = await predictIndices(
        reference,
        foldData.examples,
        foldData.validationIndices,
        options,
      );
      reference.dispose();

      // What a train step needs at micro-batches of 4 and 8 (peak above the model's own memory),
      // measured on a model that is then dropped: need(b) = fixed + b * perRow.
      const probe = await load();
      const rows = (n: number) =>
        fullBatch(
          Array.from({ length: n }, (_, r) =>
            Array.from(foldData.examples.ids.subarray(r * SEQ, (r + 1) * SEQ)),
          ),
          Array.from({ length: n }, (_, r) => r % 2),
        );
      const need = async (n: number) => {
        const batch = { ...rows(n), labels: new Float32Array(n).fill(1) };
        await probe.trainStep(batch, { lr: 0, accumulate: true });
        await probe.discardGradients();
        cuda.emptyCache();
        const base = stats().allocated;
        cuda.resetPeakMemoryStats(cudaIndex);
        await probe.trainStep(batch, { lr: 0, accumulate: true });
        const peak = stats().maxAllocated - base;
        await probe.discardGradients();
        return peak;
      };
      const need4 = await need(4);
      const need8 = await need(8);
      probe.dispose();
      const perRow = (need8 - need4) / 4;
      const fixed = need4 - 4 * perRow;
      assert.ok(perRow > 4 * MiB, `a row needs only ${perRow} bytes: the probe measured nothing`);

      const model = await load();
      cuda.emptyCache();
      const settled = stats();
      // Room for 12 rows: 8 fit with a third to spare, 16 need a third more than there is.
      const cap = settled.reserved + fixed + 12 * perRow;
      const events: TrainEvent[] = [];
      let cachedAfterBackoff = Number.NaN;
      let result;
      let backedOff: Float32Array;
      testing.cudaSetMemoryFraction(cap / settled.total, cudaIndex);
      try {
        result = await trainFold(
          model,
          foldData,
          options,
          new RunStore(join(work, 'oom-b')).fold(0),
          score,
          {
            fold: 0,
            seed: 9,
            onEvent: (event) => {
              events.push(event);
              if (event.type === 'out-of-memory') {
                const now = stats();
                cachedAfterBackoff = now.reserved - now.allocated;
              }
            },
          },
        );
        backedOff = await predictIndices(
          model,
          foldData.examples,
          foldData.validationIndices,
          options,
        );
      } finally {
        testing.cudaSetMemoryFraction(1, cudaIndex);
      }
      const end = stats();
      model.dispose();
      const backoffs = events.filter((event) => event.type === 'out-of-memory');
      const worst = Math.max(...expected.map((p, i) => Math.abs(p - backedOff[i]!)));
      report('out-of-memory back-off', {
        'MiB per row': mib(perRow),
        'MiB fixed': mib(fixed),
        'cap MiB': mib(cap),
        'OOM errors (allocator)': end.ooms - settled.ooms,
        'back-offs': backoffs.length,
        'MiB cached after back-off': mib(cachedAfterBackoff),
        steps: result.steps,
        'max |P diff| vs uncapped run': worst,
      });
      assert.ok(end.ooms > settled.ooms, 'the allocator reported no out-of-memory error');
      assert.equal(backoffs.length, 1, `back-off events: ${JSON.stringify(backoffs)}`);
      assert.match(
        (backoffs[0] as { message: string }).message,
        /micro-batches of 16; retrying with 8 and 2 accumulation/,
      );
      assert.equal(result.steps, 2);
      // The cache was handed back before the retry (a few partly used segments may stay).
      assert.ok(cachedAfterBackoff < 0.25 * cap, `${cachedAfterBackoff} bytes still cached`);
      assert.ok(worst <= 1e-4, `predictions differ from the uncapped run by ${worst}`);
    },
  );
});
