// Shared-prefix rows against separate sequences: a row holding a post's shared part once and up
// to nine criterion suffixes gives, per suffix, the logits and (summed over the batch) the adapter
// gradients of the separate sequences shared part + suffix, within fp32 rounding. Both attention
// modes, with and without gradient checkpointing, on GQA models, with variable suffix lengths, a
// row without a shared part, and a suffix ending in the pad id (pooled as transformers would).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Classifier, type Batch, type SharedAttention } from '../../../src/native/index.js';
import { dora, maxAbsDiff, oracle } from './helpers.js';

const VOCAB = 1000;
const PAD = 0;
const TOLERANCE = 1e-5;

const MODELS: Record<string, Record<string, unknown>> = {
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

interface Post {
  prefix: number[];
  suffixes: number[][];
  labels: number[];
}

function tokens(count: number, state: { seed: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    state.seed = (Math.imul(state.seed, 1664525) + 1013904223) >>> 0;
    out.push(3 + (state.seed % (VOCAB - 3)));
  }
  return out;
}

/** Three posts: nine suffixes of lengths 1..9, four suffixes, and a row with no shared part. */
function makePosts(): Post[] {
  const state = { seed: 7 };
  const nine = [3, 1, 5, 9, 2, 7, 4, 6, 8].map((n) => tokens(n, state));
  // A suffix whose last token is the pad id (mask 1): pooled at the token before it.
  nine[4] = [...tokens(2, state), PAD];
  return [
    { prefix: tokens(11, state), suffixes: nine, labels: [1, 0, 0, 1, 0, 1, 1, 0, 0] },
    {
      prefix: tokens(5, state),
      suffixes: [2, 6, 1, 3].map((n) => tokens(n, state)),
      labels: [0, 1, 1, 0],
    },
    { prefix: [], suffixes: [tokens(6, state)], labels: [1] },
  ];
}

/** The posts as shared-prefix rows (right-padded). */
function sharedBatch(posts: Post[]): Batch {
  const rows = posts.map((p) => [...p.prefix, ...p.suffixes.flat()]);
  const seqLen = Math.max(...rows.map((r) => r.length));
  const inputIds = new Int32Array(posts.length * seqLen).fill(PAD);
  const attentionMask = new Uint8Array(posts.length * seqLen);
  rows.forEach((row, b) => {
    inputIds.set(row, b * seqLen);
    attentionMask.fill(1, b * seqLen, b * seqLen + row.length);
  });
  return {
    inputIds,
    attentionMask,
    batchSize: posts.length,
    seqLen,
    labels: new Int32Array(posts.flatMap((p) => p.labels)),
    segments: {
      prefixLengths: Int32Array.from(posts, (p) => p.prefix.length),
      segmentCounts: Int32Array.from(posts, (p) => p.suffixes.length),
      segmentLengths: Int32Array.from(posts.flatMap((p) => p.suffixes.map((s) => s.length))),
    },
  };
}

/** Every (shared part + suffix) as its own row, padded on `side`. */
function plainBatch(posts: Post[], side: 'left' | 'right'): Batch {
  const rows = posts.flatMap((p) => p.suffixes.map((s) => [...p.prefix, ...s]));
  const seqLen = Math.max(...rows.map((r) => r.length));
  const inputIds = new Int32Array(rows.length * seqLen).fill(PAD);
  const attentionMask = new Uint8Array(rows.length * seqLen);
  rows.forEach((row, b) => {
    const start = b * seqLen + (side === 'right' ? 0 : seqLen - row.length);
    inputIds.set(row, start);
    attentionMask.fill(1, start, start + row.length);
  });
  return {
    inputIds,
    attentionMask,
    batchSize: rows.length,
    seqLen,
    labels: new Int32Array(posts.flatMap((p) => p.labels)),
  };
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-shared-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.each(Object.keys(MODELS))('%s Llama', (name) => {
  let modelDir: string;
  let adapter: string;
  beforeAll(async () => {
    modelDir = join(work, name);
    adapter = join(work, `${name}-adapter`);
    const config = {
      vocab_size: VOCAB,
      hidden_size: 64,
      intermediate_size: 128,
      pad_token_id: PAD,
      rms_norm_eps: 1e-5,
      ...MODELS[name],
    };
    await oracle(['make-model', '--dir', modelDir, '--config', JSON.stringify(config)]);
    // An adapter with B != 0 and moved magnitudes, so every DoRA term is in play.
    await oracle([
      'make-adapter',
      '--model',
      modelDir,
      '--out',
      adapter,
      '--dora',
      JSON.stringify(dora(4, 8)),
      '--seed',
      '9',
    ]);
  }, 120_000);

  test.each<SharedAttention>(['block_mask', 'prefix_kv'])(
    '%s: logits and gradients of shared rows equal those of the separate sequences',
    async (sharedAttention) => {
      const posts = makePosts();
      const shared = sharedBatch(posts);
      for (const gradientCheckpointing of [false, true]) {
        const clf = await Classifier.load({
          modelDir,
          dora: dora(4, 8),
          seed: 1,
          sharedAttention,
          gradientCheckpointing,
        });
        try {
          expect(clf.info().sharedAttention).toBe(sharedAttention);
          await clf.loadAdapter(adapter);
          const reference = await clf.predictLogits(plainBatch(posts, 'right'));
          const left = await clf.predictLogits(plainBatch(posts, 'left'));
          const logits = await clf.predictLogits(shared);
          expect(logits.length).toBe(reference.length);
          const logitDiff = Math.max(maxAbsDiff(logits, reference), maxAbsDiff(logits, left));

          const expected = await clf.gradients(plainBatch(posts, 'right'));
          const ours = await clf.gradients(shared, { checkpointing: gradientCheckpointing });
          expect(Object.keys(ours.grads).sort()).toEqual(Object.keys(expected.grads).sort());
          let gradDiff = 0;
          let gradScale = 0;
          for (const [key, value] of Object.entries(expected.grads)) {
            gradDiff = Math.max(gradDiff, maxAbsDiff(ours.grads[key]!, value));
            for (const v of value) gradScale = Math.max(gradScale, Math.abs(v));
          }
          console.log(
            `${name} ${sharedAttention} checkpointing=${gradientCheckpointing}: logits max |diff| ` +
              `${logitDiff.toExponential(2)}, grads max |diff| ${gradDiff.toExponential(2)} ` +
              `(largest grad ${gradScale.toExponential(2)}), loss |diff| ` +
              `${Math.abs(ours.loss - expected.loss).toExponential(2)}`,
          );
          expect(logitDiff).toBeLessThan(TOLERANCE);
          expect(gradDiff).toBeLessThan(TOLERANCE);
          expect(gradScale).toBeGreaterThan(1e-3);
          expect(Math.abs(ours.loss - expected.loss)).toBeLessThan(TOLERANCE);

          // predictProba: one probability per segment, equal to the separate sequences'.
          const probabilities = await clf.predictProba(shared);
          const plainProbabilities = await clf.predictProba(plainBatch(posts, 'right'));
          expect(maxAbsDiff(probabilities, plainProbabilities)).toBeLessThan(TOLERANCE);

          // One train step on the shared rows equals one on the separate sequences. (adamEps 1
          // makes the first Adam update about lr * g, so it does not blow up rounding-level
          // gradient entries into full-size steps of either sign.)
          const before = join(work, `${name}-${sharedAttention}-${gradientCheckpointing}`);
          await clf.saveAdapter(before);
          const step = { lr: 0.1, maxGradNorm: 1, adamEps: 1 };
          const sharedStep = await clf.trainStep(shared, step);
          const afterShared = await clf.predictLogits(plainBatch(posts, 'right'));
          await clf.loadAdapter(before);
          const plainStep = await clf.trainStep(plainBatch(posts, 'right'), step);
          const afterPlain = await clf.predictLogits(plainBatch(posts, 'right'));
          expect(Math.abs(sharedStep.loss - plainStep.loss)).toBeLessThan(TOLERANCE);
          expect(Math.abs(sharedStep.gradNorm - plainStep.gradNorm)).toBeLessThan(TOLERANCE);
          expect(maxAbsDiff(afterShared, afterPlain)).toBeLessThan(TOLERANCE);
          expect(maxAbsDiff(afterShared, reference)).toBeGreaterThan(1e-4);
        } finally {
          clf.dispose();
        }
      }
    },
    300_000,
  );
});
