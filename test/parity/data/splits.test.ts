// Parity with scikit-learn's StratifiedGroupKFold and numpy's RandomState, computed by the
// project's .venv Python in the test itself. Skipped when that Python is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import {
  generateSyntheticDataset,
  RandomState,
  stratifiedGroupKFold,
  SYMPTOMS,
} from '../../../src/data/index.js';
import { describeWithTool } from '../../describeWithTool.js';

const python = resolve('.venv/bin/python');
const oracle = resolve('test/parity/data/sklearn_oracle.py');
const describeIfPython = describeWithTool({
  tool: 'the .venv Python oracles',
  available: existsSync(python),
  install: 'npm run setup',
});

interface SgkfCase {
  y: number[] | string[];
  groups: string[];
  n_splits: number;
  shuffle: boolean;
  seed: number;
}
interface OracleAnswer {
  sklearn: string;
  sgkf: number[][][];
  rng: { key: number[]; sample: number[]; permutation: number[] }[];
}

function askOracle(request: {
  sgkf?: SgkfCase[];
  rng?: { seed: number | number[]; n: number }[];
}): OracleAnswer {
  const run = spawnSync(python, [oracle], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (run.status !== 0) throw new Error(`oracle failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as OracleAnswer;
}

// A small deterministic generator for test inputs, independent of the code under test.
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Random grouped data: groups of 1-9 samples, skewed classes, samples interleaved. */
function randomCase(caseSeed: number): SgkfCase {
  const rnd = lcg(caseSeed + 1);
  const nGroups = 6 + Math.floor(rnd() * 120);
  const nClasses = caseSeed % 3 === 0 ? 2 + Math.floor(rnd() * 18) : 2 + Math.floor(rnd() * 3);
  const nSplits = 2 + Math.floor(rnd() * Math.min(8, nGroups - 2));
  const samples: { y: number; group: string }[] = [];
  for (let g = 0; g < nGroups; g++) {
    const id = `s_${Math.floor(rnd() * 3000)}_${g}`;
    const size = 1 + Math.floor(rnd() * 9);
    for (let k = 0; k < size; k++)
      samples.push({ y: Math.floor(rnd() ** 2 * nClasses), group: id });
  }
  const order = samples
    .map((_, i) => i)
    .sort((a, b) => ((a * 7919 + caseSeed) % 97) - ((b * 7919 + caseSeed) % 97) || a - b);
  const y = order.map((i) => samples[i]!.y);
  const groups = order.map((i) => samples[i]!.group);
  // Every class needs at least nSplits members somewhere for sklearn to accept the input.
  for (let c = 0; c < nSplits; c++) y[c] = 0;
  return {
    y: caseSeed % 5 === 2 ? y.map((v) => `class_${v}`) : y,
    groups,
    n_splits: nSplits,
    shuffle: caseSeed % 4 !== 1,
    seed: (caseSeed * 2654435761) % 2 ** 32,
  };
}

describeIfPython('numpy RandomState parity', () => {
  it('seeds, samples and permutes exactly like numpy', () => {
    const seeds: (number | number[])[] = [
      0,
      1,
      42,
      12345,
      2 ** 32 - 1,
      [1, 2, 3],
      [0xdeadbeef],
      Array.from({ length: 700 }, (_, i) => i * 31),
    ];
    const answer = askOracle({ rng: seeds.map((seed, i) => ({ seed, n: 1 + i * 97 })) });
    seeds.forEach((seed, i) => {
      const rs = new RandomState(seed);
      const expected = answer.rng[i]!;
      expect(rs.stateKey().slice(0, 8)).toEqual(expected.key);
      expect([rs.randomSample(), rs.randomSample(), rs.randomSample(), rs.randomSample()]).toEqual(
        expected.sample,
      );
      expect(rs.permutation(1 + i * 97)).toEqual(expected.permutation);
    });
  });
});

describeIfPython('StratifiedGroupKFold parity with scikit-learn', () => {
  it("gives sklearn's test folds on random grouped inputs (binary, multiclass, string labels, shuffle on/off)", () => {
    const cases = Array.from({ length: 80 }, (_, i) => randomCase(i));
    const answer = askOracle({ sgkf: cases });
    expect(Number(answer.sklearn.split('.')[1])).toBeGreaterThanOrEqual(9);
    cases.forEach((c, i) => {
      const folds = stratifiedGroupKFold({
        y: c.y,
        groups: c.groups,
        nSplits: c.n_splits,
        shuffle: c.shuffle,
        seed: c.seed,
      });
      expect({ case: i, test: folds.map((f) => f.test) }).toEqual({
        case: i,
        test: answer.sgkf[i],
      });
    });
  });
});

describeIfPython('StratifiedGroupKFold parity on the synthetic data set', () => {
  it("gives sklearn's folds for y = criterion x label and groups = post, several seeds", () => {
    const synthetic = generateSyntheticDataset({ seed: 21 });
    const positive = new Set(
      synthetic.annotations.filter((a) => a.status === 1).map((a) => `${a.postId}|${a.symptom}`),
    );
    const y: number[] = [];
    const groups: string[] = [];
    for (const post of synthetic.posts) {
      SYMPTOMS.forEach((s, c) => {
        y.push(c * 2 + (positive.has(`${post.postId}|${s}`) ? 1 : 0));
        groups.push(post.postId);
      });
    }
    const cases: SgkfCase[] = [0, 42, 2024].map((seed) => ({
      y,
      groups,
      n_splits: 5,
      shuffle: true,
      seed,
    }));
    cases.push({ y: y.map((v) => v % 2), groups, n_splits: 5, shuffle: true, seed: 7 });
    const answer = askOracle({ sgkf: cases });
    cases.forEach((c, i) => {
      const folds = stratifiedGroupKFold({
        y: c.y,
        groups: c.groups,
        nSplits: c.n_splits,
        shuffle: c.shuffle,
        seed: c.seed,
      });
      expect(folds.map((f) => f.test)).toEqual(answer.sgkf[i]);
    });
  });

  it('matches sklearn in the degenerate case of as many groups as splits', () => {
    const cases: SgkfCase[] = [
      {
        y: [0, 1, 0, 1, 0, 1],
        groups: ['a', 'a', 'b', 'b', 'c', 'c'],
        n_splits: 3,
        shuffle: true,
        seed: 0,
      },
      {
        y: [0, 0, 1, 1, 0, 1, 1],
        groups: ['g1', 'g2', 'g3', 'g1', 'g2', 'g3', 'g3'],
        n_splits: 3,
        shuffle: false,
        seed: 0,
      },
    ];
    const answer = askOracle({ sgkf: cases });
    cases.forEach((c, i) => {
      const folds = stratifiedGroupKFold({
        y: c.y,
        groups: c.groups,
        nSplits: c.n_splits,
        shuffle: c.shuffle,
        seed: c.seed,
      });
      expect(folds.map((f) => f.test)).toEqual(answer.sgkf[i]);
    });
  });
});
