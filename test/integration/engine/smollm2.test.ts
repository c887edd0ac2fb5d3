// SmolLM2-135M end to end through the programmatic API, the way a user of an installed package
// runs it: `model=smollm2` (the set-up's GGUF, its tokenizer from the GGUF metadata) trained for
// two steps on a handful of synthetic posts with short prompts, from a working directory that
// holds neither the criteria nor the model (the package's own are used), then `infer` on the
// run from yet another directory, re-reading the run's saved config.yaml. A bench with the base
// model closes it. Kept to a few steps: the point is that every piece accepts a GGUF model.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { load } from 'js-yaml';

import { bench } from '../../../src/bench/index.js';
import { packageRoot } from '../../../src/config/index.js';
import { trainFolds } from '../../../src/engine/index.js';
import { infer } from '../../../src/infer/index.js';

const SMOLLM2 = join(packageRoot, 'models', 'smollm2', 'SmolLM2-135M-Instruct.Q4_1.gguf');

let work: string;
beforeAll(() => {
  if (!existsSync(SMOLLM2)) {
    throw new Error(`${SMOLLM2} is missing: npm install (scripts/setup.mjs) downloads it`);
  }
  work = mkdtempSync(join(tmpdir(), 'mentallam-smollm2-run-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('model=smollm2 trains two steps, infers from another directory, and benches', async () => {
  const trainDir = join(work, 'train-cwd');
  const runDir = join(trainDir, 'run');
  const result = await trainFolds({
    cwd: trainDir,
    overrides: [
      'model=smollm2',
      'run_dir=run',
      'data.dir=data',
      'data.synthetic.n_posts=10',
      'data.splits.n_splits=2',
      'data.splits.inner_validation_fraction=0.25',
      // A short prompt: the template's own tokens plus a little of the post.
      'data.prompt.max_length=64',
      'model.dora.r=2',
      'model.dora.dropout=0',
      'training.folds=[0]',
      'training.max_steps=2',
      'training.micro_batch_size=4',
      'training.effective_batch_size=4',
      'inference.batch_size=16',
      'logging.mlflow.enabled=false',
      'logging.progress.mode=none',
      'logging.level=error',
    ],
  });
  expect(result.folds.map((fold) => fold.fold)).toEqual([0]);
  const fold = result.folds[0]!;
  expect(fold.steps).toBe(2);
  expect(Number.isFinite(result.pooled.f1)).toBe(true);

  // The saved config names the package's criteria and model by absolute paths that exist.
  const saved = load(readFileSync(join(runDir, 'config.yaml'), 'utf8')) as {
    data: { criteria_path: string };
    model: { path: string; name: string };
  };
  expect(saved.model).toMatchObject({
    name: 'SmolLM2-135M-Instruct',
    path: join(packageRoot, 'models', 'smollm2'),
  });
  expect(saved.data.criteria_path).toBe(join(packageRoot, 'data', 'dsm5', 'criteria.json'));
  const adapterConfig = JSON.parse(
    readFileSync(join(runDir, 'fold_0', 'best_adapter', 'adapter_config.json'), 'utf8'),
  ) as { base_model_name_or_path: string; r: number };
  expect(adapterConfig).toMatchObject({
    base_model_name_or_path: resolve(packageRoot, 'models/smollm2'),
    r: 2,
  });

  const inferDir = join(work, 'infer-cwd');
  const inferred = await infer({
    cwd: inferDir,
    run: runDir,
    post: 'I have not slept properly in weeks and nothing feels worth doing anymore.',
    overrides: ['logging.mlflow.enabled=false', 'logging.level=error'],
  });
  expect(inferred.model).toMatchObject({ kind: 'run', folds: [0] });
  expect(inferred.predictions).toHaveLength(9);
  for (const prediction of inferred.predictions) {
    expect(prediction.probability).toBeGreaterThan(0);
    expect(prediction.probability).toBeLessThan(1);
  }
  // The nine scores differ: the criterion text reached the model through the GGUF tokenizer.
  expect(new Set(inferred.predictions.map((p) => p.probability)).size).toBeGreaterThan(1);

  const benched = await bench({
    cwd: inferDir,
    overrides: ['model=smollm2', 'logging.mlflow.enabled=false', 'logging.level=error'],
    lengths: [16],
    warmup: 0,
    runs: 2,
    plot: false,
    outDir: join(work, 'bench'),
  });
  expect(benched.model).toEqual({ kind: 'base', ref: join(packageRoot, 'models', 'smollm2') });
  expect(benched.summaries[0]).toMatchObject({ length: 16, runs: 2 });
}, 600_000);
