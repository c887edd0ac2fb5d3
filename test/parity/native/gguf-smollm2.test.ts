// GGUF parity, a real model: SmolLM2-135M-Instruct (Q4_1 linears, Q8_0 embedding, F32 norms;
// 30 layers, 9 heads / 3 KV heads) loaded by the addon against transformers' GGUF loader
// (LlamaForSequenceClassification.from_pretrained(dir, gguf_file=...)) + peft, fp32. The score
// head is the addon's fresh seeded one, carried to the oracle in the adapter the addon saves; the
// oracle then perturbs lora_B and the magnitudes and hands the adapter back, so every base weight
// shows in the logits. Equal logits prove the dequantization and the q/k un-permutation.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Classifier, readGgufTensor } from '../../../src/native.js';
import { dora, maxAbsDiff, paddedBatch, runOracle, writeBatch } from './helpers.js';

const root = resolve(import.meta.dirname ?? '.', '../../..');
const SMOLLM2 = join(root, 'models', 'smollm2', 'SmolLM2-135M-Instruct.Q4_1.gguf');
const VOCAB = 49152;
const PAD = 2; // tokenizer.ggml.padding_token_id

// Base weights compared directly: q and k of the first and last layers (un-permuted), an
// unpermuted Q4_1 weight and a norm.
const WEIGHTS = [
  'model.layers.0.self_attn.q_proj.weight',
  'model.layers.0.self_attn.k_proj.weight',
  'model.layers.29.self_attn.q_proj.weight',
  'model.layers.29.self_attn.k_proj.weight',
  'model.layers.7.mlp.down_proj.weight',
  'model.layers.7.input_layernorm.weight',
];

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-smollm2-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

test('SmolLM2 GGUF: weights and logits equal transformers + peft', async () => {
  if (!existsSync(SMOLLM2)) {
    throw new Error(`${SMOLLM2} is missing: npm install (scripts/setup.mjs) downloads it`);
  }
  const options = dora(4, 8);
  const clf = await Classifier.load({ modelDir: SMOLLM2, dora: options, seed: 11 });
  try {
    expect(clf.info()).toMatchObject({
      numLayers: 30,
      hiddenSize: 576,
      vocabSize: VOCAB,
      numLabels: 2,
      padTokenId: PAD,
    });
    const fresh = join(work, 'fresh');
    const perturbed = join(work, 'perturbed');
    await clf.saveAdapter(fresh);
    const right = paddedBatch([11, 6, 3], 'right', PAD, VOCAB, 21);
    const left = paddedBatch([11, 6, 3], 'left', PAD, VOCAB, 21);
    const batches = [
      await writeBatch(join(work, 'right.json'), right),
      await writeBatch(join(work, 'left.json'), left),
    ];
    const dump = join(work, 'weights');
    const expected = await runOracle<{ logits: number[][]; padTokenId: number }>('gguf_oracle.py', [
      'logits',
      '--gguf',
      SMOLLM2,
      '--adapter-in',
      fresh,
      '--adapter-out',
      perturbed,
      '--seed',
      '5',
      '--batch',
      ...batches,
      '--dump',
      dump,
      '--names',
      ...WEIGHTS,
    ]);
    expect(expected.padTokenId).toBe(PAD);

    for (const name of WEIGHTS) {
      const ours = await readGgufTensor(SMOLLM2, name);
      const bytes = await readFile(join(dump, `${name}.f32`));
      const theirs = new Float32Array(
        bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
      );
      const diff = maxAbsDiff(ours.data, theirs);
      console.log(`smollm2 ${name} (${ours.type}): max |diff| ${diff}`);
      expect(diff).toBe(0);
    }

    // The un-permutation is not the identity: the stored rows differ from Hugging Face's.
    const stored = await readGgufTensor(SMOLLM2, 'blk.0.attn_q.weight');
    const hf = await readGgufTensor(SMOLLM2, 'model.layers.0.self_attn.q_proj.weight');
    expect(maxAbsDiff(stored.data, hf.data)).toBeGreaterThan(0.01);

    await clf.loadAdapter(perturbed);
    const ours = [await clf.predictLogits(right), await clf.predictLogits(left)];
    const diffs = ours.map((logits, i) => maxAbsDiff(logits, expected.logits[i]!));
    const scale = Math.max(...expected.logits.flat().map(Math.abs));
    console.log(
      `smollm2 logits max |diff| right ${diffs[0]!.toExponential(2)}, left ${diffs[1]!.toExponential(2)} (logits up to ${scale.toFixed(3)})`,
    );
    for (const d of diffs) expect(d).toBeLessThan(1e-4);
    // The perturbed adapter matters: the logits moved away from the fresh ones.
    await clf.loadAdapter(fresh);
    expect(maxAbsDiff(await clf.predictLogits(right), ours[0]!)).toBeGreaterThan(1e-3);
  } finally {
    clf.dispose();
  }
}, 900_000);
