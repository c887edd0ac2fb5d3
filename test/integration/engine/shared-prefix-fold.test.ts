/**
 * Fold-level exactness of the two speed-ups, on the tiny model and the synthetic data:
 *  - a fold trained with shared-prefix batches (one row per post) equals the same fold trained on
 *    the same post-grouped batches collated one row per pair: same losses, validation metrics,
 *    adapters (within fp32 rounding);
 *  - with adapters on the top layer only, a fold trained from the frozen-bottom cache equals the
 *    same fold computed from the token ids;
 *  - a whole run with the cache in a mapped file logs what it cached and leaves no file behind.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { buildFolds } from '../../../src/data/index.js';
import { resolveConfig, trainFolds } from '../../../src/engine/index.js';
import { hasSharedPrefix, type ModelBatch } from '../../../src/engine/examples.js';
import {
  predictIndices,
  trainFold,
  type FoldData,
  type FoldModel,
  type FoldTrainingOptions,
} from '../../../src/engine/foldTrainer.js';
import { buildFrozenCache } from '../../../src/engine/frozenCache.js';
import {
  loadClassifier,
  loadDataset,
  modelDirectory,
  prepareExamples,
} from '../../../src/engine/setup.js';
import { camelCaseKeys, createLogger, type Logger } from '../../../src/infra/index.js';
import type { Classifier } from '../../../src/native.js';
import { foldFilesIn, smallFoldOptions, smallRunOverrides } from './helpers.js';

const TOLERANCE = 1e-5;

const dir = mkdtempSync(join(tmpdir(), 'mentallam-shared-fold-'));
const quiet: Logger = createLogger({ level: 'error' });

async function setUp(extra: string[]) {
  const { config } = await resolveConfig({
    overrides: smallRunOverrides(dir, 'unused', [
      'data.synthetic.n_posts=40',
      'model.dora.dropout=0',
      ...extra,
    ]),
  });
  const modelDir = await modelDirectory(config, dir, quiet);
  const dataset = await loadDataset(config, dir, quiet);
  const prepared = await prepareExamples(config, dataset, modelDir, dir, quiet);
  const fold = buildFolds(dataset, camelCaseKeys(config.data.splits))[0]!;
  const labels = Uint8Array.from(dataset.pairs, (pair) => pair.label);
  return { config, modelDir, prepared, fold, labels };
}

// The default learning rate (training/default.yaml), not smallFoldOptions' 1e-2: the two sides
// differ by fp32 rounding (a GEMM over a differently composed batch rounds differently), and Adam
// turns rounding-level gradient differences into steps proportional to lr, so after a dozen steps
// at 1e-2 the scores drift ~1e-5 apart even though every forward starts bitwise equal.
function options(overrides: Partial<FoldTrainingOptions> = {}) {
  return {
    ...smallFoldOptions,
    lr: 1e-3,
    maxEpochs: 2,
    microBatchSize: 18,
    effectiveBatchSize: 36,
    lengthBucketing: true,
    evalEverySteps: 2,
    inferenceBatchSize: 27,
    padTokenId: 0,
    ...overrides,
  } satisfies FoldTrainingOptions;
}

async function trainOnce(
  classifier: Classifier,
  data: FoldData,
  trainOptions: FoldTrainingOptions,
  name: string,
) {
  const initial = await predictIndices(
    classifier,
    data.examples,
    data.validationIndices,
    trainOptions,
    data.frozen,
  );
  const result = await trainFold(
    classifier,
    data,
    trainOptions,
    foldFilesIn(join(dir, name)),
    (_, scores) => ({ value: scores.reduce((s, v) => s + v, 0), metrics: {} }),
    { fold: 0, seed: 13 },
  );
  const scores = await predictIndices(
    classifier,
    data.examples,
    data.validationIndices,
    trainOptions,
    data.frozen,
  );
  return { result, scores, moved: maxAbsDiff(scores, initial) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

test('a fold trained on shared-prefix rows equals one trained on the same batches as pairs', async () => {
  const { config, modelDir, prepared, fold, labels } = await setUp([]);
  expect(hasSharedPrefix(prepared.examples)).toBe(true);
  const data: FoldData = {
    examples: prepared.examples,
    labels,
    trainIndices: fold.train,
    validationIndices: fold.validation,
  };
  const runs = [];
  for (const sharedPrefix of [true, false]) {
    const classifier = await loadClassifier(config, modelDir, prepared);
    try {
      runs.push(await trainOnce(classifier, data, options({ sharedPrefix }), `s${sharedPrefix}`));
    } finally {
      classifier.dispose();
    }
  }
  const [shared, plain] = runs as [(typeof runs)[0], (typeof runs)[0]];
  expect(shared.result.steps).toBe(plain.result.steps);
  expect(shared.result.steps).toBeGreaterThan(2);
  const valueDiff = Math.max(
    ...shared.result.history.map((entry, i) =>
      Math.abs(entry.value - plain.result.history[i]!.value),
    ),
  );
  const lossDiff = Math.max(
    ...shared.result.history.map((entry, i) =>
      Math.abs((entry.trainLoss ?? 0) - (plain.result.history[i]!.trainLoss ?? 0)),
    ),
  );
  const scoreDiff = maxAbsDiff(shared.scores, plain.scores);
  console.log(
    `shared vs plain fold: ${shared.result.steps} steps, train loss max |diff| ` +
      `${lossDiff.toExponential(2)}, validation scores max |diff| ${scoreDiff.toExponential(2)} ` +
      `(training moved them by ${shared.moved.toExponential(2)})`,
  );
  expect(lossDiff).toBeLessThan(TOLERANCE);
  expect(valueDiff / fold.validation.length).toBeLessThan(TOLERANCE);
  expect(scoreDiff).toBeLessThan(TOLERANCE);
  // Training moved the scores far more than the two sides differ: the comparison has teeth.
  expect(shared.moved).toBeGreaterThan(1e-3);
}, 900_000);

test('a template without the post first falls back to one prompt and one row per pair', async () => {
  const { config, modelDir, prepared, fold, labels } = await setUp([
    'data.prompt.template="criterion: {criterion}, post: {post} Does the post match? yes or no"',
  ]);
  expect(hasSharedPrefix(prepared.examples)).toBe(false);
  const batches: ModelBatch[] = [];
  const classifier = await loadClassifier(config, modelDir, prepared);
  try {
    const recording: FoldModel = {
      trainStep: (batch, step) => {
        batches.push(batch);
        return classifier.trainStep(batch, step);
      },
      predictProba: (batch) => classifier.predictProba(batch),
      saveAdapter: (path) => classifier.saveAdapter(path),
      loadAdapter: (path) => classifier.loadAdapter(path),
      discardGradients: () => classifier.discardGradients(),
    };
    const trainOptions = options({ maxEpochs: 1 });
    const data: FoldData = {
      examples: prepared.examples,
      labels,
      trainIndices: fold.train,
      validationIndices: fold.validation,
    };
    const result = await trainFold(
      recording,
      data,
      trainOptions,
      foldFilesIn(join(dir, 'plain-template')),
      (_, scores) => ({ value: scores.reduce((s, v) => s + v, 0), metrics: {} }),
      { fold: 0, seed: 13 },
    );
    // Micro-batches of micro_batch_size pairs, each pair its own row.
    expect(batches.every((batch) => batch.segments === undefined)).toBe(true);
    expect(batches.length).toBe(Math.ceil(fold.train.length / trainOptions.microBatchSize));
    expect(batches[0]!.batchSize).toBe(trainOptions.microBatchSize);
    expect(result.steps).toBe(Math.ceil(batches.length / 2));
  } finally {
    classifier.dispose();
  }
}, 900_000);

test('a fold trained from the frozen-bottom cache equals one computed from the ids', async () => {
  const { config, modelDir, prepared, fold, labels } = await setUp(['model.dora.layers={top: 1}']);
  const runs = [];
  for (const cached of [true, false]) {
    const classifier = await loadClassifier(config, modelDir, prepared);
    try {
      expect(classifier.info().firstAdaptedLayer).toBe(1);
      const built = cached
        ? await buildFrozenCache(classifier, prepared.examples, {
            maxMemoryBytes: 1 << 30,
            dir,
            padTokenId: 0,
            batchSize: 27,
          })
        : null;
      if (cached) expect(built?.report).toMatchObject({ layer: 1, storage: 'memory' });
      const data: FoldData = {
        examples: prepared.examples,
        labels,
        trainIndices: fold.train,
        validationIndices: fold.validation,
        frozen: built?.rows ?? null,
      };
      try {
        runs.push(await trainOnce(classifier, data, options(), `c${cached}`));
      } finally {
        built?.rows.cache.dispose();
      }
    } finally {
      classifier.dispose();
    }
  }
  const [cached, fromIds] = runs as [(typeof runs)[0], (typeof runs)[0]];
  expect(cached.result.steps).toBe(fromIds.result.steps);
  const lossDiff = Math.max(
    ...cached.result.history.map((entry, i) =>
      Math.abs((entry.trainLoss ?? 0) - (fromIds.result.history[i]!.trainLoss ?? 0)),
    ),
  );
  const scoreDiff = maxAbsDiff(cached.scores, fromIds.scores);
  console.log(
    `cached vs from ids fold: train loss max |diff| ${lossDiff.toExponential(2)}, validation ` +
      `scores max |diff| ${scoreDiff.toExponential(2)}`,
  );
  expect(lossDiff).toBeLessThan(TOLERANCE);
  expect(scoreDiff).toBeLessThan(TOLERANCE);
  expect(cached.moved).toBeGreaterThan(1e-3);
}, 900_000);

test('a run with the cache in a mapped file logs it and leaves no file', async () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ level: 'info', json: true, stream });
  const result = await trainFolds({
    overrides: smallRunOverrides(dir, 'cached-run', [
      'data.synthetic.n_posts=40',
      'model.dora.layers={top: 1}',
      'training.frozen_cache.max_memory_mb=0',
      'training.max_epochs=1',
      'training.folds=[0]',
    ]),
    cwd: dir,
    logger,
  });
  expect(result.folds).toHaveLength(1);
  const logged = lines.join('\n');
  expect(logged).toMatch(/frozen-bottom cache: the input of layer 1 for 40 rows/);
  expect(logged).toMatch(/in a mapped file at .*frozen-cache\.bin \(unlinked\)/);
  // At the end: how much was read from it and the time that saved (one epoch, so the train
  // posts once plus the validation and test posts at least once: more than the cache holds).
  const savings = logged
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { msg: string; tokensServed?: number; layer?: number })
    .find((line) => line.msg.startsWith('frozen-bottom cache: read'));
  expect(savings?.msg).toMatch(/layers 0\.\.0 for them would have taken about [\d.]+ s/);
  expect(savings?.msg).toMatch(/saved about -?[\d.]+ s net of the [\d.]+ s fill/);
  expect(savings?.tokensServed).toBeGreaterThan(0);
  expect(readdirSync(result.runDir)).not.toContain('frozen-cache.bin');
}, 900_000);
