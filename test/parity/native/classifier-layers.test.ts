// Adapters on chosen layers (peft's layers_to_transform), both ways: an adapter peft wrote with
// layers_to_transform loads here and gives peft's logits and gradients; an adapter trained here
// on { top: K } layers is saved in peft's format (layers_to_transform + layers_pattern "layers"),
// peft puts adapters on exactly those layers when loading it, and gives the same logits.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Classifier, inspectSafetensors } from '../../../src/native/index.js';
import { dora, maxAbsDiff, oracle, paddedBatch, writeBatch } from './helpers.js';

const VOCAB = 1000;
const PAD = 0;
const CONFIG = {
  vocab_size: VOCAB,
  hidden_size: 64,
  intermediate_size: 128,
  pad_token_id: PAD,
  rms_norm_eps: 1e-5,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 4,
};

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-layers-'));
  modelDir = join(work, 'model');
  await oracle([
    'make-model',
    '--dir',
    modelDir,
    '--config',
    JSON.stringify(CONFIG),
    '--seed',
    '3',
  ]);
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Decoder layers holding adapter tensors in an adapter_model.safetensors. */
async function layersIn(adapterDir: string): Promise<number[]> {
  const entries = await inspectSafetensors(join(adapterDir, 'adapter_model.safetensors'));
  const layers = new Set<number>();
  for (const { name } of entries) {
    const match = /\.layers\.(\d+)\./.exec(name);
    if (match) layers.add(Number(match[1]));
  }
  return [...layers].sort((a, b) => a - b);
}

test('a peft adapter with layers_to_transform loads here: same layers, logits and gradients', async () => {
  const peftAdapter = join(work, 'peft-layers');
  const options = { ...dora(4, 8), layers: [0, 2] };
  await oracle([
    'make-adapter',
    '--model',
    modelDir,
    '--out',
    peftAdapter,
    '--dora',
    JSON.stringify(options),
    '--seed',
    '4',
  ]);
  expect(await layersIn(peftAdapter)).toEqual([0, 2]);
  const batch = paddedBatch([9, 5, 2, 7], 'right', PAD, VOCAB, 13, [1, 0, 1, 0]);
  const batchFile = await writeBatch(join(work, 'batch.json'), batch);

  // Loaded into a classifier that starts with adapters on every layer: the file decides.
  const clf = await Classifier.load({ modelDir, dora: dora(4, 8), seed: 1 });
  try {
    await clf.loadAdapter(peftAdapter);
    expect(clf.info().dora.layers).toEqual([0, 2]);
    expect(clf.info().firstAdaptedLayer).toBe(0);
    const expected = await oracle<{ logits: number[][]; layers: number[] }>([
      'logits',
      '--model',
      modelDir,
      '--adapter',
      peftAdapter,
      '--batch',
      batchFile,
    ]);
    expect(expected.layers).toEqual([0, 2]);
    const logits = await clf.predictLogits(batch);
    const diff = maxAbsDiff(logits, expected.logits[0]!);
    console.log(`layers [0, 2]: logits max |diff| vs peft ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);

    const grads = await oracle<{ loss: number; grads: Record<string, number[]> }>([
      'grads',
      '--model',
      modelDir,
      '--adapter',
      peftAdapter,
      '--batch',
      batchFile,
    ]);
    for (const checkpointing of [false, true]) {
      const ours = await clf.gradients(batch, { checkpointing });
      expect(Object.keys(ours.grads).sort()).toEqual(Object.keys(grads.grads).sort());
      let worst = 0;
      for (const [key, value] of Object.entries(grads.grads)) {
        worst = Math.max(worst, maxAbsDiff(ours.grads[key]!, value));
      }
      console.log(`layers [0, 2], checkpointing ${checkpointing}: grads max |diff| ${worst}`);
      expect(worst).toBeLessThan(1e-5);
      expect(Math.abs(ours.loss - grads.loss)).toBeLessThan(1e-5);
    }
  } finally {
    clf.dispose();
  }
}, 300_000);

test('an adapter trained here on { top: 2 } layers loads in peft on those layers with our logits', async () => {
  const clf = await Classifier.load({
    modelDir,
    dora: { ...dora(4, 8), layers: { top: 2 } },
    seed: 2,
  });
  const ours = join(work, 'ours-top2');
  try {
    expect(clf.info().dora.layers).toEqual([2, 3]);
    expect(clf.info().firstAdaptedLayer).toBe(2);
    const train = paddedBatch([6, 8, 4], 'right', PAD, VOCAB, 17, [1, 0, 1]);
    // A few steps so B != 0 and m moved: the adapter then changes the logits.
    for (let step = 0; step < 3; step++) await clf.trainStep(train, { lr: 1e-2 });
    await clf.saveAdapter(ours);
    const config = JSON.parse(await readFile(join(ours, 'adapter_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config.layers_to_transform).toEqual([2, 3]);
    expect(config.layers_pattern).toBe('layers');
    expect(await layersIn(ours)).toEqual([2, 3]);

    const batch = paddedBatch([9, 5, 2, 7], 'left', PAD, VOCAB, 19);
    const batchFile = await writeBatch(join(work, 'batch-top2.json'), batch);
    const expected = await oracle<{ logits: number[][]; layers: number[] }>([
      'logits',
      '--model',
      modelDir,
      '--adapter',
      ours,
      '--batch',
      batchFile,
    ]);
    expect(expected.layers).toEqual([2, 3]);
    const logits = await clf.predictLogits(batch);
    const diff = maxAbsDiff(logits, expected.logits[0]!);
    console.log(`top 2: logits max |diff| vs peft loading our adapter ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);

    // Reloading it here keeps the layers; a fresh adapter on every layer is replaced.
    const other = await Classifier.load({ modelDir, dora: dora(4, 8), seed: 3 });
    try {
      await other.loadAdapter(ours);
      expect(other.info().dora.layers).toEqual([2, 3]);
      expect(maxAbsDiff(await other.predictLogits(batch), logits)).toBe(0);
    } finally {
      other.dispose();
    }
  } finally {
    clf.dispose();
  }
}, 300_000);

test('dora.layers out of range, repeated or empty is a user error naming dora.layers', async () => {
  const cases: [unknown, RegExp][] = [
    [[0, 4], /dora\.layers: layer 4 does not exist \(the model has layers 0\.\.3\)/],
    [[1, 1], /dora\.layers names layer 1 twice/],
    [[], /dora\.layers must name at least one layer/],
    [{ top: 5 }, /dora\.layers\.top must be between 1 and the model's 4 layers, got 5/],
    [{ top: 0 }, /dora\.layers\.top must be >= 1/],
    ['top', /dora\.layers/],
  ];
  for (const [layers, message] of cases) {
    await expect(
      Classifier.load({
        modelDir,
        dora: { ...dora(4, 8), layers: layers as number[] },
        seed: 1,
      }),
    ).rejects.toMatchObject({ code: 'ERR_NATIVE_USER', message: expect.stringMatching(message) });
  }
}, 120_000);
