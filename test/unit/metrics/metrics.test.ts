import {
  auc,
  brierScore,
  computeBinaryMetrics,
  fixedThresholdGrid,
  metricsToRecord,
  perCriterionMetrics,
  pooledMetrics,
  precisionRecallCurve,
  rocAucScore,
  rocCurve,
  summarizeAcrossFolds,
  thresholdSweep,
  tuneThresholds,
} from '../../../src/metrics/index.js';

describe('input validation names the offending index', () => {
  test.each([
    [[0, 1, 2], [0.1, 0.2, 0.3], /labels\[2\] is 2; expected 0 or 1/],
    [[0, 1, 0.5], [0.1, 0.2, 0.3], /labels\[2\] is 0.5/],
    [[0, 1, NaN], [0.1, 0.2, 0.3], /labels\[2\] is NaN/],
    [[0, 1, 1], [0.1, NaN, 0.3], /scores\[1\] is NaN; expected a finite number/],
    [[0, 1, 1], [0.1, 0.2, Infinity], /scores\[2\] is Infinity/],
    [[0, 1, 1], [0.1, -Infinity, 0.3], /scores\[1\] is -Infinity/],
    [[0, 1, 1], [0.1, 1.5, 0.3], /scores\[1\] is 1.5; expected a probability in \[0, 1\]/],
    [[0, 1], [0.1], /differ in length \(2 labels, 1 scores\)/],
    [[], [], /empty/],
  ])('computeBinaryMetrics(%j, %j)', (labels, scores, message) => {
    expect(() => computeBinaryMetrics(labels, scores, 0.5)).toThrow(message);
  });

  test('every entry point validates', () => {
    expect(() => rocCurve([0, 3], [0.1, 0.2])).toThrow(/labels\[1\] is 3/);
    expect(() => precisionRecallCurve([0, 1], [NaN, 0.2])).toThrow(/scores\[0\] is NaN/);
    expect(() => rocAucScore([0, 1], [0.1, NaN])).toThrow(/scores\[1\]/);
    expect(() => brierScore([0, 1], [0.1, 1.2])).toThrow(/scores\[1\] is 1.2/);
    expect(() => thresholdSweep([0, 1], [0.1, NaN])).toThrow(/scores\[1\]/);
    expect(() => computeBinaryMetrics([0, 1], [0.1, 0.2], NaN)).toThrow(/threshold is NaN/);
    expect(() => tuneThresholds([0, 1], [0.1, 0.2], ['A1'])).toThrow(/criterionIds has 1/);
    expect(() => tuneThresholds([0, 1], [0.1, 0.2], ['A1', ''])).toThrow(/criterionIds\[1\]/);
  });

  test('ranking curves accept any finite score (logits), metrics need probabilities', () => {
    expect(rocAucScore([0, 1, 0, 1], [-3, 2, -1, 5])).toBe(1);
  });
});

describe('threshold sweep', () => {
  test('the fixed grid is k / 100 for k = 0..100', () => {
    expect(fixedThresholdGrid).toHaveLength(101);
    expect(fixedThresholdGrid[7]).toBe(0.07);
    expect(fixedThresholdGrid[100]).toBe(1);
  });

  test('predicts 1 when score >= threshold, so a score equal to the threshold counts', () => {
    const sweep = thresholdSweep([1, 0], [0.3, 0.1]);
    const at = (t: number) => sweep.curve.find((p) => p.threshold === t)!;
    expect(at(0.3).recall).toBe(1);
    expect(at(0.31).recall).toBe(0);
  });

  test('ties in F1 go to the threshold closest to 0.5', () => {
    // F1 = 1 for every threshold in (0.2, 0.8]: the chosen one is 0.5 itself.
    const sweep = thresholdSweep([0, 1], [0.2, 0.8]);
    expect(sweep.f1).toBe(1);
    expect(sweep.threshold).toBe(0.5);
  });

  test('ties at equal distance from 0.5 go to the smaller threshold', () => {
    // t = 0.6: tp 1, fp 0, fn 1 → F1 2/3; t = 0.4: tp 2, fp 2, fn 0 → F1 4/6; t = 0.1: 4/7.
    // In float64 0.6 - 0.5 and 0.5 - 0.4 are the same number, so the last rule decides.
    const sweep = thresholdSweep([1, 1, 0, 0, 0], [0.6, 0.4, 0.4, 0.4, 0.1], { grid: 'exact' });
    expect(sweep.curve.map((p) => p.threshold)).toEqual([0.1, 0.4, 0.6]);
    expect(sweep.curve[1]!.f1).toBe(sweep.curve[2]!.f1);
    expect(Math.abs(0.6 - 0.5)).toBe(Math.abs(0.4 - 0.5));
    expect(sweep.threshold).toBe(0.4);
    expect(sweep.f1).toBe(2 / 3);
  });

  test('the highest F1 wins over closeness to 0.5, then the optimum nearest 0.5', () => {
    // F1 = 1 only for thresholds in (0.1, 0.12]: grid points 0.11 and 0.12; 0.12 is nearer 0.5.
    const sweep = thresholdSweep([0, 0, 1, 1], [0.05, 0.1, 0.12, 0.9]);
    expect(sweep.threshold).toBe(0.12);
    expect(sweep.f1).toBe(1);
  });

  test('with no positive every F1 is 0 and the threshold closest to 0.5 is chosen', () => {
    expect(thresholdSweep([0, 0, 0], [0.2, 0.3, 0.9])).toMatchObject({ threshold: 0.5, f1: 0 });
    const exact = thresholdSweep([0, 0, 0], [0.2, 0.3, 0.9], { grid: 'exact' });
    expect(exact.threshold).toBe(0.3);
  });

  test('an unknown grid is an error', () => {
    expect(() =>
      thresholdSweep([0, 1], [0.1, 0.9], { grid: 'coarse' as unknown as 'fixed' }),
    ).toThrow(/grid is "coarse"/);
  });
});

describe('tuneThresholds', () => {
  // A1: 12 positives cleanly above 0.7; A2: 3 positives (falls back); A3: none (falls back).
  const labels: number[] = [];
  const scores: number[] = [];
  const ids: string[] = [];
  const add = (id: string, label: number, score: number) => {
    ids.push(id);
    labels.push(label);
    scores.push(score);
  };
  for (let i = 0; i < 12; i++) add('A1', 1, 0.75 + i * 0.01);
  for (let i = 0; i < 30; i++) add('A1', 0, 0.1 + i * 0.01);
  for (let i = 0; i < 3; i++) add('A2', 1, 0.32);
  for (let i = 0; i < 30; i++) add('A2', 0, 0.05);
  for (let i = 0; i < 30; i++) add('A3', 0, 0.2);

  test('criteria below minPositives fall back to the global threshold and are reported', () => {
    const tuned = tuneThresholds(labels, scores, ids);
    expect(tuned.minPositives).toBe(10);
    expect(tuned.fellBack).toEqual(['A2', 'A3']);
    expect(tuned.perCriterion.A1).toMatchObject({ source: 'criterion', positives: 12, f1: 1 });
    expect(tuned.perCriterion.A1!.threshold).toBeGreaterThan(0.39);
    expect(tuned.perCriterion.A2).toMatchObject({ source: 'global', positives: 3, n: 33 });
    expect(tuned.perCriterion.A2!.threshold).toBe(tuned.global.threshold);
    expect(tuned.thresholds).toEqual({
      A1: tuned.perCriterion.A1!.threshold,
      A2: tuned.global.threshold,
      A3: tuned.global.threshold,
    });
    // The fallback F1 is the criterion's own F1 at the global threshold.
    const atGlobal = perCriterionMetrics(labels, scores, ids, tuned.thresholds);
    expect(tuned.perCriterion.A2!.f1).toBe(atGlobal.perCriterion.A2!.f1);
  });

  test('minPositives is configurable', () => {
    expect(tuneThresholds(labels, scores, ids, { minPositives: 3 }).fellBack).toEqual(['A3']);
    expect(tuneThresholds(labels, scores, ids, { minPositives: 0 }).fellBack).toEqual([]);
    expect(() => tuneThresholds(labels, scores, ids, { minPositives: -1 })).toThrow(/minPositives/);
  });
});

describe('per-criterion and pooled metrics', () => {
  test('criteria are listed in natural order and a missing threshold is an error', () => {
    const ids = ['A10', 'A2', 'A1', 'A2'];
    const report = perCriterionMetrics([1, 0, 1, 1], [0.9, 0.2, 0.8, 0.7], ids, 0.5);
    expect(report.criteria).toEqual(['A1', 'A2', 'A10']);
    expect(report.macroF1).toBe((1 + 1 + 1) / 3);
    expect(() => perCriterionMetrics([1, 0], [0.9, 0.2], ['A1', 'A2'], { A1: 0.5 })).toThrow(
      /no entry for criterion A2/,
    );
  });

  test('pooled metrics use each fold its own thresholds and sum the counts', () => {
    const pooled = pooledMetrics([
      { labels: [1, 0], scores: [0.4, 0.3], thresholds: 0.35 },
      { labels: [1, 0], scores: [0.4, 0.3], thresholds: 0.45 },
    ]);
    expect(pooled.overall.confusion).toEqual({ tp: 1, fn: 1, fp: 0, tn: 2 });
    expect(pooled.overall.threshold).toBeNull();
    expect(pooled.criteria).toEqual([]);
    expect(pooled.macroF1).toBeNaN();
  });

  test('pooled per-criterion thresholds need criterion ids', () => {
    expect(() => pooledMetrics([{ labels: [1], scores: [0.4], thresholds: { A1: 0.5 } }])).toThrow(
      /fold 0: thresholds are per criterion but no criterionIds/,
    );
    expect(() => pooledMetrics([])).toThrow(/at least one fold/);
  });
});

describe('degenerate inputs', () => {
  test('one class: ROC-AUC is NaN with a reason, zero_division metrics are 0 with reasons', () => {
    const m = computeBinaryMetrics([0, 0, 0], [0.1, 0.6, 0.9], 0.5);
    expect(m.rocAuc).toBeNaN();
    expect(m.undefinedReasons.rocAuc).toMatch(/no positive/);
    expect(m.averagePrecision).toBe(0);
    expect(m.recall).toBe(0);
    expect(m.undefinedReasons.recall).toMatch(/zero_division/);
    expect(m.f1).toBe(0);
    expect(m.specificity).toBeCloseTo(1 / 3, 15);
    expect(m.mcc).toBe(0);
    expect(m.undefinedReasons.mcc).toBeDefined();
  });

  test('defined metrics carry no reason', () => {
    const m = computeBinaryMetrics([0, 1, 0, 1], [0.1, 0.8, 0.6, 0.3], 0.5);
    expect(m.undefinedReasons).toEqual({});
    expect(m.threshold).toBe(0.5);
    expect(metricsToRecord(m)).toMatchObject({ tp: 1, fp: 1, tn: 1, fn: 1, rocAuc: 0.75 });
  });

  test('auc refuses a non-monotonic x', () => {
    expect(() => auc([0, 1, 0.5], [0, 1, 1])).toThrow(/neither increasing nor decreasing/);
    expect(auc([1, 0], [1, 1])).toBe(1);
  });
});

describe('summarizeAcrossFolds', () => {
  test('sample std (ddof = 1), min, max; one fold has NaN std', () => {
    const s = summarizeAcrossFolds([{ f1: 0.2 }, { f1: 0.4 }, { f1: 0.6 }]);
    expect(s.f1!.mean).toBeCloseTo(0.4, 15);
    expect(s.f1!.std).toBeCloseTo(0.2, 15);
    expect(s.f1).toMatchObject({ min: 0.2, max: 0.6, n: 3 });
    expect(summarizeAcrossFolds([{ f1: 0.3 }]).f1!.std).toBeNaN();
  });

  test('folds must report the same metrics', () => {
    expect(() => summarizeAcrossFolds([{ f1: 0.2 }, { mcc: 0.1 }])).toThrow(/fold 1 has no/);
    expect(() => summarizeAcrossFolds([{ f1: 0.2 }, { f1: 0.1, mcc: 0.1 }])).toThrow(
      /fold 1 reports metric "mcc"/,
    );
    expect(() => summarizeAcrossFolds([])).toThrow(/at least one fold/);
  });
});
