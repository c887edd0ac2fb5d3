/**
 * Every metric against scikit-learn 1.9 computed in the test by .venv/bin/python on random,
 * tied (scores rounded to 1 decimal) and degenerate inputs; tolerance 1e-9.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRng } from '../../../src/infra/index.js';
import {
  averagePrecisionScore,
  computeBinaryMetrics,
  perCriterionMetrics,
  pooledMetrics,
  precisionRecallCurve,
  rocAucScore,
  rocCurve,
  summarizeAcrossFolds,
  thresholdSweep,
} from '../../../src/metrics/index.js';

const python = resolve('.venv/bin/python');
const oracle = resolve('test/parity/metrics/sklearn_oracle.py');
const tolerance = 1e-9;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface BinaryCase {
  kind: 'binary';
  labels: number[];
  scores: number[];
  threshold: number;
}

/** Scores that carry signal: positives drawn higher, so curves are not trivial. */
function randomCase(seed: number, n: number, prevalence: number, decimals?: number): BinaryCase {
  const rng = createRng(seed);
  const labels: number[] = [];
  const scores: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = rng() < prevalence ? 1 : 0;
    let score = Math.min(1, Math.max(0, 0.3 * rng() + 0.7 * rng() * (label === 1 ? 1 : 0.6)));
    if (decimals !== undefined) score = Number(score.toFixed(decimals));
    labels.push(label);
    scores.push(score);
  }
  return { kind: 'binary', labels, scores, threshold: 0.3 };
}

const binaryCases: Record<string, BinaryCase> = {
  random: randomCase(1, 600, 0.1),
  randomBalanced: randomCase(2, 301, 0.5),
  tied: randomCase(3, 400, 0.15, 1),
  tiedCoarse: randomCase(4, 50, 0.3, 1),
  allNegative: { ...randomCase(5, 40, 0), threshold: 0.5 },
  allPositive: { ...randomCase(6, 40, 1), threshold: 0.5 },
  allEqualScores: {
    kind: 'binary',
    labels: [0, 1, 0, 1, 1, 0],
    scores: Array(6).fill(0.4),
    threshold: 0.4,
  },
  allEqualNoPredictions: {
    kind: 'binary',
    labels: [0, 1, 0, 1],
    scores: Array(4).fill(0.2),
    threshold: 0.5,
  },
  singlePair: { kind: 'binary', labels: [1], scores: [0.7], threshold: 0.5 },
  extremes: {
    kind: 'binary',
    labels: [0, 1, 1, 0, 1, 0, 0],
    scores: [0, 1, 1, 0, 0, 1, 0.5],
    threshold: 1,
  },
  perfect: {
    kind: 'binary',
    labels: [0, 0, 1, 1, 0, 1],
    scores: [0.1, 0.2, 0.8, 0.9, 0.3, 0.7],
    threshold: 0.5,
  },
};

const criteriaOrder = ['A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'A8', 'A9'];

function criteriaCase(seed: number, posts: number, decimals?: number) {
  const rng = createRng(seed);
  const labels: number[] = [];
  const scores: number[] = [];
  const criterionIds: string[] = [];
  // Post-major so the oracle can reshape to a (post × criterion) indicator matrix. A9 stays
  // all-negative to exercise zero_division inside macro-F1.
  const prevalence = [0.22, 0.21, 0.11, 0.08, 0.08, 0.07, 0.04, 0.03, 0];
  for (let p = 0; p < posts; p++) {
    criteriaOrder.forEach((id, c) => {
      const label = rng() < prevalence[c]! ? 1 : 0;
      let score = Math.min(1, 0.4 * rng() + (label === 1 ? 0.5 * rng() : 0.2 * rng()));
      if (decimals !== undefined) score = Number(score.toFixed(decimals));
      labels.push(label);
      scores.push(score);
      criterionIds.push(id);
    });
  }
  const thresholds = Object.fromEntries(criteriaOrder.map((id, c) => [id, 0.2 + 0.03 * c]));
  return { kind: 'criteria' as const, labels, scores, criterionIds, thresholds, criteriaOrder };
}

const criteriaCases = { criteria: criteriaCase(7, 150), criteriaTied: criteriaCase(8, 120, 1) };

const foldCases = [randomCase(11, 120, 0.1), randomCase(12, 90, 0.2, 1), randomCase(13, 30, 0)];
const foldThresholds = [0.25, 0.4, 0.5];

const summaryValues = [
  { f1: 0.41, rocAuc: 0.8, mcc: 0.33 },
  { f1: 0.38, rocAuc: 0.77, mcc: 0.3 },
  { f1: 0.52, rocAuc: 0.85, mcc: 0.41 },
  { f1: 0.45, rocAuc: NaN, mcc: 0.35 },
  { f1: 0.4, rocAuc: 0.79, mcc: 0.31 },
];
const summaryFinite = summaryValues.map(({ f1, mcc }) => ({ f1, mcc }));

let expected: Record<string, Json>;

beforeAll(async () => {
  if (!existsSync(python)) throw new Error(`${python} is missing; run npm run setup`);
  const dir = await mkdtemp(join(tmpdir(), 'mentallam-metrics-parity-'));
  try {
    const cases = {
      ...binaryCases,
      ...criteriaCases,
      pooled: {
        kind: 'pooled',
        folds: foldCases.map((c, i) => ({ ...c, thresholds: foldThresholds[i] })),
      },
      summary: { kind: 'summary', values: summaryFinite },
      summarySingle: { kind: 'summary', values: [summaryFinite[0]] },
    };
    const input = join(dir, 'cases.json');
    const output = join(dir, 'results.json');
    await writeFile(input, JSON.stringify(cases));
    const run = spawnSync(python, [oracle, input, output], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`sklearn oracle failed:\n${run.stderr}`);
    expected = JSON.parse(await readFile(output, 'utf8')) as Record<string, Json>;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function decode(value: Json): number {
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  if (typeof value !== 'number') throw new Error(`expected a number, got ${JSON.stringify(value)}`);
  return value;
}

/** Deep comparison: numbers within tolerance, NaN equals NaN, infinities exactly. */
function expectClose(actual: unknown, wanted: Json, path: string): void {
  if (Array.isArray(wanted)) {
    const list = Array.from(actual as ArrayLike<unknown>);
    if (list.length !== wanted.length) {
      throw new Error(`${path}: length ${list.length}, sklearn has ${wanted.length}`);
    }
    wanted.forEach((w, i) => expectClose(list[i], w, `${path}[${i}]`));
    return;
  }
  if (wanted !== null && typeof wanted === 'object') {
    for (const [key, w] of Object.entries(wanted)) {
      expectClose((actual as Record<string, unknown>)[key], w, `${path}.${key}`);
    }
    return;
  }
  const want = decode(wanted);
  const got = actual as number;
  const ok =
    (Number.isNaN(want) && Number.isNaN(got)) ||
    got === want ||
    (Number.isFinite(want) && Math.abs(got - want) <= tolerance);
  if (!ok) throw new Error(`${path}: got ${got}, sklearn has ${want}`);
}

function field(name: string, key: string): Json {
  const entry = expected[name] as Record<string, Json>;
  return entry[key]!;
}

describe.each(Object.keys(binaryCases))('binary case %s', (name) => {
  const data = binaryCases[name]!;

  test('threshold metrics and confusion counts', () => {
    const metrics = computeBinaryMetrics(data.labels, data.scores, data.threshold);
    expectClose(metrics, field(name, 'atThreshold'), `${name}`);
  });

  test('ROC-AUC, average precision and Brier', () => {
    const metrics = computeBinaryMetrics(data.labels, data.scores, data.threshold);
    expectClose(metrics.rocAuc, field(name, 'rocAuc'), `${name}.rocAuc`);
    expectClose(metrics.averagePrecision, field(name, 'averagePrecision'), `${name}.ap`);
    expectClose(metrics.brier, field(name, 'brier'), `${name}.brier`);
    expectClose(rocAucScore(data.labels, data.scores), field(name, 'rocAuc'), `${name}.auc`);
    expectClose(
      averagePrecisionScore(data.labels, data.scores),
      field(name, 'averagePrecision'),
      `${name}.ap`,
    );
  });

  test('ROC and PR curves with and without drop_intermediate', () => {
    expectClose(rocCurve(data.labels, data.scores), field(name, 'roc'), `${name}.roc`);
    expectClose(
      rocCurve(data.labels, data.scores, { dropIntermediate: false }),
      field(name, 'rocAll'),
      `${name}.rocAll`,
    );
    expectClose(precisionRecallCurve(data.labels, data.scores), field(name, 'pr'), `${name}.pr`);
    expectClose(
      precisionRecallCurve(data.labels, data.scores, { dropIntermediate: true }),
      field(name, 'prDropped'),
      `${name}.prDropped`,
    );
  });

  test('threshold sweeps (fixed and exact grids) and their chosen thresholds', () => {
    expectClose(thresholdSweep(data.labels, data.scores), field(name, 'sweepFixed'), name);
    expectClose(
      thresholdSweep(data.labels, data.scores, { grid: 'exact' }),
      field(name, 'sweepExact'),
      name,
    );
  });
});

describe.each(Object.keys(criteriaCases))('per-criterion case %s', (name) => {
  test('per-criterion metrics, macro-F1 and micro-F1 match sklearn', () => {
    const data = criteriaCases[name as keyof typeof criteriaCases];
    const report = perCriterionMetrics(
      data.labels,
      data.scores,
      data.criterionIds,
      data.thresholds,
    );
    expect(report.criteria).toEqual(criteriaOrder);
    expectClose(report.perCriterion, field(name, 'perCriterion'), `${name}.perCriterion`);
    expectClose(report.macroF1, field(name, 'macroF1'), `${name}.macroF1`);
    expectClose(report.overall.f1, field(name, 'microF1'), `${name}.microF1`);
    expectClose(report.overall, field(name, 'overall'), `${name}.overall`);
  });
});

test('pooled out-of-fold metrics equal sklearn on the concatenated fold predictions', () => {
  const pooled = pooledMetrics(
    foldCases.map((c, i) => ({
      labels: c.labels,
      scores: c.scores,
      thresholds: foldThresholds[i]!,
    })),
  );
  expect(pooled.folds).toBe(3);
  expect(pooled.overall.threshold).toBeNull();
  expectClose(pooled.overall, field('pooled', 'overall'), 'pooled.overall');
});

test('fold summaries equal numpy mean, std(ddof=1), min and max', () => {
  expectClose(summarizeAcrossFolds(summaryFinite), expected.summary!, 'summary');
  expectClose(summarizeAcrossFolds([summaryFinite[0]!]), expected.summarySingle!, 'single');
  // A NaN fold value propagates, as numpy.mean does.
  expect(summarizeAcrossFolds(summaryValues).rocAuc!.mean).toBeNaN();
});
