import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  buildFolds,
  type Dataset,
  loadRedsm5,
  readFoldFile,
  stratifiedGroupKFold,
  writeFoldFiles,
  writeSyntheticDataset,
} from '../../../src/data/index.js';

const criteriaPath = resolve('data/dsm5/criteria.json');
let dir: string;
let dataset: Dataset;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-splits-'));
  await writeSyntheticDataset({ outDir: join(dir, 'data'), seed: 5 });
  dataset = loadRedsm5({ dir: join(dir, 'data'), criteriaPath });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('buildFolds on the synthetic data set', () => {
  it('keeps posts in one part, puts every pair in exactly one test fold, and spreads rare criteria', () => {
    const folds = buildFolds(dataset, { nSplits: 5, seed: 42, innerValidationFraction: 0.2 });
    expect(folds).toHaveLength(5);
    const testCount = new Array<number>(dataset.pairs.length).fill(0);
    for (const f of folds) {
      for (const i of f.test) testCount[i] = (testCount[i] ?? 0) + 1;
      const parts = [f.trainPostIds, f.validationPostIds, f.testPostIds].map((p) => new Set(p));
      const [train, validation, test] = parts as [Set<string>, Set<string>, Set<string>];
      for (const id of validation) expect(train.has(id) || test.has(id)).toBe(false);
      for (const id of test) expect(train.has(id)).toBe(false);
      expect(train.size + validation.size + test.size).toBe(dataset.posts.length);
      expect(f.train.length + f.validation.length + f.test.length).toBe(dataset.pairs.length);
      expect(f.test.length % 9).toBe(0);
      // ~20% of the training part is validation.
      expect(validation.size / (train.size + validation.size)).toBeCloseTo(0.2, 1);
      // criterion × label stratification: PSYCHOMOTOR (35 positives) gets 7 per fold.
      const psychomotor = f.test.filter((i) => {
        const p = dataset.pairs[i]!;
        return p.symptom === 'PSYCHOMOTOR' && p.label === 1;
      }).length;
      expect(psychomotor).toBe(7);
    }
    expect(testCount.every((c) => c === 1)).toBe(true);
  });

  it('can stratify on the label alone, and rejects unknown stratifications', () => {
    const folds = buildFolds(dataset, {
      nSplits: 5,
      seed: 42,
      innerValidationFraction: 0.2,
      stratify: 'label',
    });
    const positives = folds.map((f) => f.test.filter((i) => dataset.pairs[i]!.label === 1).length);
    expect(Math.max(...positives) - Math.min(...positives)).toBeLessThanOrEqual(9);
    expect(() =>
      buildFolds(dataset, {
        nSplits: 5,
        seed: 42,
        innerValidationFraction: 0.2,
        stratify: 'x' as 'label',
      }),
    ).toThrow(/stratify must be/);
  });

  it('is deterministic by seed and changes with it', () => {
    const a = buildFolds(dataset, { nSplits: 5, seed: 1, innerValidationFraction: 0.2 });
    const b = buildFolds(dataset, { nSplits: 5, seed: 1, innerValidationFraction: 0.2 });
    const c = buildFolds(dataset, { nSplits: 5, seed: 2, innerValidationFraction: 0.2 });
    expect(b).toEqual(a);
    expect(c.map((f) => f.testPostIds)).not.toEqual(a.map((f) => f.testPostIds));
  });

  it('writes fold files with hashes and metadata that read back', async () => {
    const folds = buildFolds(dataset, { nSplits: 5, seed: 42, innerValidationFraction: 0.2 });
    const paths = await writeFoldFiles(join(dir, 'folds'), folds, {
      datasetHash: dataset.hash,
      seed: 42,
      nSplits: 5,
      innerValidationFraction: 0.2,
      stratification: 'criterion_x_label',
      countOverrideReason: null,
    });
    expect(paths.map((p) => p.slice(-11))).toEqual(
      [0, 1, 2, 3, 4].map((i) => `fold_${i}.json`.padStart(11, '/')),
    );
    const file = await readFoldFile(paths[0] as string);
    expect(file).toMatchObject({ fold: 0, n_splits: 5, seed: 42, dataset_hash: dataset.hash });
    expect(file.test.post_ids).toEqual(folds[0]?.testPostIds);
    expect(file.test.sha256).toMatch(/^[0-9a-f]{64}$/);
    const tampered = readFileSync(paths[0] as string, 'utf8').replace(
      file.test.post_ids[0] as string,
      'x',
    );
    const badPath = join(dir, 'folds', 'bad.json');
    await import('node:fs/promises').then((fs) => fs.writeFile(badPath, tampered));
    await expect(readFoldFile(badPath)).rejects.toThrow(/do not match/);
  });
});

describe('stratifiedGroupKFold input checks', () => {
  it('rejects impossible requests with sklearn-like messages', () => {
    const y = [0, 1, 0, 1, 0, 1, 0, 1];
    const groups = ['a', 'a', 'b', 'c', 'a', 'b', 'c', 'c'];
    expect(() => stratifiedGroupKFold({ y, groups, nSplits: 4, shuffle: false })).toThrow(
      /greater than the number of groups: 3/,
    );
    expect(() => stratifiedGroupKFold({ y, groups, nSplits: 5, shuffle: false })).toThrow(
      /number of members in each class/,
    );
    expect(() =>
      stratifiedGroupKFold({ y: [0.5, 1], groups: ['a', 'b'], nSplits: 2, shuffle: false }),
    ).toThrow(/class labels/);
    expect(() => stratifiedGroupKFold({ y, groups, nSplits: 2, shuffle: true })).toThrow(/seed/);
  });
});
