// fp32 parity on the GPU: mentallam's Classifier on CUDA against transformers'
// LlamaForSequenceClassification + peft DoRA on the same GPU (eager attention, no TF32): pooled
// logits for right and left padding, adapters both ways (peft's into mentallam, mentallam's into
// peft), the merged model, first-step gradients and 3 AdamW steps. Tolerance 1e-4 throughout;
// each test prints its figure.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Classifier, nativeInfo, readSafetensorsTensor } from '../../src/native/index.js';
import { dora, paddedBatch, writeBatch } from '../parity/native/helpers.js';
import { device, maxAbsDiff, onCuda, oracle, report } from './gpuEnv.js';

const TOLERANCE = 1e-4;
const VOCAB = 1000;
const PAD = 0;
// The GQA model of test/parity/native (3 layers, 4 heads over 2 KV heads, hidden 64).
const CONFIG = {
  vocab_size: VOCAB,
  hidden_size: 64,
  intermediate_size: 128,
  pad_token_id: PAD,
  rms_norm_eps: 1e-5,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 3,
};
const DORA = dora(4, 8);

let work: string;
before(async () => {
  if (onCuda) assert.ok(nativeInfo().cudaAvailable, 'the addon sees no CUDA device');
  work = await mkdtemp(join(tmpdir(), 'mentallam-gpu-parity-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function makeModel(name: string, seed: number): Promise<{ modelDir: string; start: string }> {
  const modelDir = join(work, name);
  const start = join(work, `${name}-peft-adapter`);
  await oracle([
    'make-model',
    '--dir',
    modelDir,
    '--config',
    JSON.stringify(CONFIG),
    '--seed',
    String(seed),
  ]);
  await oracle([
    'make-adapter',
    '--model',
    modelDir,
    '--out',
    start,
    '--dora',
    JSON.stringify(DORA),
    '--seed',
    String(seed + 1),
  ]);
  return { modelDir, start };
}

describe(`fp32 parity with transformers + peft on ${device}`, () => {
  test('logits (right and left padding), adapters both ways, merge', async () => {
    const { modelDir, start } = await makeModel('logits', 1);
    const right = paddedBatch([9, 5, 2, 7], 'right', PAD, VOCAB, 11);
    const left = paddedBatch([9, 5, 2, 7], 'left', PAD, VOCAB, 11);
    const files = [
      await writeBatch(join(work, 'right.json'), right),
      await writeBatch(join(work, 'left.json'), left),
    ];
    const ours = join(work, 'ours-adapter');
    const clf = await Classifier.load({ modelDir, dora: DORA, seed: 3, device, dtype: 'float32' });
    let oursLogits: Float32Array[];
    let merged: Float32Array[];
    try {
      assert.equal(clf.info().device, device === 'cuda' ? 'cuda:0' : device);
      await clf.loadAdapter(start);
      oursLogits = [await clf.predictLogits(right), await clf.predictLogits(left)];
      await clf.saveAdapter(ours);
      await clf.merge();
      merged = [await clf.predictLogits(right), await clf.predictLogits(left)];
    } finally {
      clf.dispose();
    }
    // peft on the same GPU: the adapter it made, the one mentallam saved, and its merged model.
    const logitsOf = (...extra: string[]) =>
      oracle<{ logits: number[][] }>(
        ['logits', '--model', modelDir, ...extra, '--batch', ...files],
        {},
      );
    const [peft, peftOfOurs, peftMerged] = await Promise.all([
      logitsOf('--adapter', start),
      logitsOf('--adapter', ours),
      logitsOf('--adapter', start, '--merge'),
    ]);
    const worst = (a: ArrayLike<number>[], b: ArrayLike<number>[]) =>
      Math.max(...a.map((x, i) => maxAbsDiff(x, b[i]!)));
    const figures = {
      'logits vs peft': worst(oursLogits, peft.logits),
      'peft on our saved adapter': worst(peftOfOurs.logits, peft.logits),
      'merged vs unmerged': worst(merged, oursLogits),
      'merged vs peft merge_and_unload': worst(merged, peftMerged.logits),
      tolerance: TOLERANCE,
    };
    report('fp32 logits, adapter round trip, merge (max |diff|)', figures);
    // The logits are O(1): a tolerance of 1e-4 is a relative one too.
    assert.ok(Math.max(...oursLogits.map((l) => Math.max(...l.map(Math.abs)))) > 0.1);
    for (const [what, diff] of Object.entries(figures)) {
      assert.ok(diff <= TOLERANCE, `${what}: max |diff| ${diff} > ${TOLERANCE}`);
    }
  });

  test('first-step gradients and 3 AdamW steps', async () => {
    const { modelDir, start } = await makeModel('train', 5);
    const LR = 1e-3;
    const WD = 0.1;
    const CLIP = 0.5;
    // Adam's update is lr * m / (sqrt(v) + eps): eps = 1e-6 bounds how far an entry whose gradient
    // is itself at fp32 rounding level (its sign then differs between any two implementations)
    // can move, as test/parity/native/classifier-train.test.ts explains for eps = 1e-4.
    const EPS = 1e-6;
    const batch = paddedBatch([8, 3, 6, 5], 'left', PAD, VOCAB, 21, [1, 0, 0, 1]);
    const batchFile = await writeBatch(join(work, 'train-batch.json'), batch);
    const peftOut = join(work, 'peft-trained');
    const peftRun = oracle<{ losses: number[]; gradNorms: number[] }>(
      [
        'train',
        '--model',
        modelDir,
        '--adapter',
        start,
        '--batch',
        batchFile,
        '--steps',
        '3',
        '--lr',
        String(LR),
        '--wd',
        String(WD),
        '--clip',
        String(CLIP),
        '--eps',
        String(EPS),
        '--out',
        peftOut,
      ],
      {},
    );
    const peftGradsRun = oracle<{ loss: number; grads: Record<string, number[]> }>(
      ['grads', '--model', modelDir, '--adapter', start, '--batch', batchFile],
      {},
    );
    const [reference, peftGrads] = await Promise.all([peftRun, peftGradsRun]);
    const ourOut = join(work, 'ours-trained');
    const clf = await Classifier.load({ modelDir, dora: DORA, seed: 0, device, dtype: 'float32' });
    const results = [];
    let worstGrad = 0;
    let firstLoss: number | undefined;
    try {
      await clf.loadAdapter(start);
      const grads = await clf.gradients(batch);
      firstLoss = grads.loss;
      assert.deepEqual(Object.keys(grads.grads).sort(), Object.keys(peftGrads.grads).sort());
      for (const [key, grad] of Object.entries(grads.grads)) {
        worstGrad = Math.max(worstGrad, maxAbsDiff(grad, peftGrads.grads[key]!));
      }
      for (let step = 0; step < 3; step++) {
        results.push(
          await clf.trainStep(batch, { lr: LR, weightDecay: WD, maxGradNorm: CLIP, adamEps: EPS }),
        );
      }
      assert.equal(clf.info().optimizerStep, 3);
      await clf.saveAdapter(ourOut);
    } finally {
      clf.dispose();
    }
    let worst = 0;
    let worstKey = '';
    for (const key of Object.keys(peftGrads.grads)) {
      const ours = (await readSafetensorsTensor(join(ourOut, 'adapter_model.safetensors'), key))
        .data;
      const theirs = (await readSafetensorsTensor(join(peftOut, 'adapter_model.safetensors'), key))
        .data;
      const diff = maxAbsDiff(ours, theirs);
      if (diff > worst) [worst, worstKey] = [diff, key];
    }
    const lossDiff = Math.max(...results.map((r, i) => Math.abs(r.loss - reference.losses[i]!)));
    const normDiff = Math.max(
      ...results.map(
        (r, i) =>
          Math.abs(r.gradNorm - reference.gradNorms[i]!) / Math.max(1, reference.gradNorms[i]!),
      ),
    );
    report('fp32 gradients and 3 AdamW steps (max |diff|)', {
      'first loss': Math.abs(firstLoss! - peftGrads.loss),
      gradients: worstGrad,
      'adapter tensors after 3 steps': worst,
      'worst tensor': worstKey,
      losses: lossDiff,
      'grad norms (relative)': normDiff,
      tolerance: TOLERANCE,
    });
    assert.ok(Math.abs(firstLoss! - peftGrads.loss) <= TOLERANCE);
    assert.ok(worstGrad <= TOLERANCE, `gradients differ by ${worstGrad}`);
    assert.ok(worst <= TOLERANCE, `adapter tensor ${worstKey} differs by ${worst} after 3 steps`);
    assert.ok(lossDiff <= TOLERANCE, `losses differ by ${lossDiff}`);
    assert.ok(normDiff <= TOLERANCE, `gradient norms differ by ${normDiff} (relative)`);
    // Clipping was active, or the test would not cover it.
    assert.ok(results[0]!.gradNorm > CLIP);
  });
});
