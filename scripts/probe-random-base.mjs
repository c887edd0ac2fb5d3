#!/usr/bin/env node
// How far DoRA adapters on a random, frozen Llama can learn the shape of the ReDSM5 task: a
// label that depends on the (post, criterion) pair, not on the post alone. Sequences of random
// tokens end with a criterion token c (one of --criteria); the label is 1 when the sequence
// holds one of c's three keyword tokens. Most sequences also hold another criterion's keyword,
// so "any keyword present" does not solve it. Prints held-out ROC-AUC every 100 steps.
//
//   npm run build && node scripts/probe-random-base.mjs [--model models/tiny-llama]
//     [--criteria 9] [--seq 64] [--steps 600] [--lr 5e-3] [--r 8] [--batch 16]
import { parseArgs } from 'node:util';

import { Classifier, manualSeed, setNumThreads } from '../dist/native.js';
import { rocAucScore } from '../dist/metrics/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/tiny-llama' },
    criteria: { type: 'string', default: '9' },
    seq: { type: 'string', default: '64' },
    steps: { type: 'string', default: '600' },
    lr: { type: 'string', default: '5e-3' },
    r: { type: 'string', default: '8' },
    batch: { type: 'string', default: '16' },
  },
});
const criteria = Number(values.criteria);
const seqLen = Number(values.seq);
const r = Number(values.r);

setNumThreads(2);
manualSeed(1);
const classifier = await Classifier.load({
  modelDir: values.model,
  seed: 1,
  numLabels: 1,
  dora: {
    r,
    alpha: 2 * r,
    dropout: 0,
    targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    useRslora: false,
  },
});
const vocab = classifier.info().vocabSize;
if (vocab < 600)
  throw new Error(`the probe needs a vocabulary of >= 600 ids, the model has ${vocab}`);

let state = 12345;
const uniform = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
const below = (n) => Math.floor(uniform() * n);
const keyword = (c) => 500 + 3 * (c % 30) + below(3);
const criterionToken = (c) => 100 + c;

function makeBatch(size) {
  const inputIds = new Int32Array(size * seqLen);
  const labels = new Float32Array(size);
  for (let b = 0; b < size; b++) {
    const row = b * seqLen;
    for (let t = 0; t < seqLen; t++) inputIds[row + t] = 200 + below(250);
    const c = below(criteria);
    const label = uniform() < 0.3 ? 1 : 0;
    const somewhere = () => row + 1 + below(seqLen - 4);
    if (label) inputIds[somewhere()] = keyword(c);
    if (uniform() < 0.6) {
      const other = criteria === 1 ? 7 : (c + 1 + below(criteria - 1)) % criteria;
      inputIds[somewhere()] = keyword(other);
    }
    inputIds[row + seqLen - 1] = criterionToken(c);
    labels[b] = label;
  }
  const attentionMask = new Uint8Array(size * seqLen).fill(1);
  return { inputIds, attentionMask, labels, batchSize: size, seqLen };
}

const heldOut = makeBatch(512);
console.log(`criteria ${criteria}, ${seqLen} tokens, lr ${values.lr}, r ${r}, ${values.model}`);
for (let step = 1; step <= Number(values.steps); step++) {
  const { loss } = await classifier.trainStep(makeBatch(Number(values.batch)), {
    lr: Number(values.lr),
  });
  if (step % 100 === 0) {
    const scores = await classifier.predictProba(heldOut);
    const auc = rocAucScore(heldOut.labels, scores);
    console.log(`step ${step}: loss ${loss.toFixed(3)}, held-out ROC-AUC ${auc.toFixed(3)}`);
  }
}
classifier.dispose();
