// Forward parity: the native Classifier's pooled logits against transformers'
// LlamaForSequenceClassification + peft DoRA (fp32, eager attention), on tiny random Llamas.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Classifier } from '../../../src/native/index.js';
import { dora, maxAbsDiff, oracle, paddedBatch, writeBatch } from './helpers.js';

const VOCAB = 1000;
const PAD = 0;

const MODELS: Record<string, Record<string, unknown>> = {
  mha: { num_attention_heads: 4, num_key_value_heads: 4, num_hidden_layers: 2 },
  gqa: { num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 3 },
  'gqa-llama3': {
    num_attention_heads: 8,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8.0,
      low_freq_factor: 1.0,
      high_freq_factor: 4.0,
      original_max_position_embeddings: 16,
    },
  },
};

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-forward-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.each(Object.keys(MODELS))('%s Llama', (name) => {
  test('logits equal transformers + peft for right and left padding; adapters round-trip', async () => {
    const modelDir = join(work, name);
    const peftAdapter = join(work, `${name}-peft`);
    const config = {
      vocab_size: VOCAB,
      hidden_size: 64,
      intermediate_size: 128,
      pad_token_id: PAD,
      rms_norm_eps: 1e-5,
      ...MODELS[name],
    };
    await oracle([
      'make-model',
      '--dir',
      modelDir,
      '--config',
      JSON.stringify(config),
      '--seed',
      '1',
    ]);
    const doraOptions = dora(4, 8);
    await oracle([
      'make-adapter',
      '--model',
      modelDir,
      '--out',
      peftAdapter,
      '--dora',
      JSON.stringify(doraOptions),
      '--seed',
      '2',
    ]);
    const right = paddedBatch([9, 5, 2, 7], 'right', PAD, VOCAB, 11);
    const left = paddedBatch([9, 5, 2, 7], 'left', PAD, VOCAB, 11);
    const files = [
      await writeBatch(join(work, `${name}-right.json`), right),
      await writeBatch(join(work, `${name}-left.json`), left),
    ];

    const clf = await Classifier.load({ modelDir, dora: doraOptions, seed: 3 });
    try {
      // An adapter peft wrote loads here and gives peft's logits.
      await clf.loadAdapter(peftAdapter);
      const expected = await oracle<{ logits: number[][] }>([
        'logits',
        '--model',
        modelDir,
        '--adapter',
        peftAdapter,
        '--batch',
        ...files,
      ]);
      const ours = [await clf.predictLogits(right), await clf.predictLogits(left)];
      const diffs = ours.map((logits, i) => maxAbsDiff(logits, expected.logits[i]!));
      console.log(
        `${name}: forward max |diff| right ${diffs[0]!.toExponential(2)}, left ${diffs[1]!.toExponential(2)}`,
      );
      for (const d of diffs) expect(d).toBeLessThan(1e-5);
      // Left and right padding give the same pooled logits (up to rounding).
      expect(maxAbsDiff(ours[0]!, ours[1]!)).toBeLessThan(1e-5);

      // An adapter saved here loads in peft and gives the same logits.
      const ourAdapter = join(work, `${name}-ours`);
      await clf.saveAdapter(ourAdapter);
      const reloaded = await oracle<{ logits: number[][] }>([
        'logits',
        '--model',
        modelDir,
        '--adapter',
        ourAdapter,
        '--batch',
        ...files,
      ]);
      for (let i = 0; i < 2; i++)
        expect(maxAbsDiff(ours[i]!, reloaded.logits[i]!)).toBeLessThan(1e-5);

      // Merged logits equal unmerged ones.
      await clf.merge();
      const merged = [await clf.predictLogits(right), await clf.predictLogits(left)];
      const mergeDiffs = merged.map((logits, i) => maxAbsDiff(logits, ours[i]!));
      console.log(
        `${name}: merged vs unmerged max |diff| ${Math.max(...mergeDiffs).toExponential(2)}`,
      );
      for (const d of mergeDiffs) expect(d).toBeLessThan(1e-5);
    } finally {
      clf.dispose();
    }
  }, 300_000);
});
