import {
  barMetricKeys,
  headlineMetricKeys,
  selectionMetricKeys,
  tableMetricKeys,
  testKeyOf,
} from '../../../src/metrics/index.js';

describe('metric key lists', () => {
  test('the bar chart and the report table derive from the headline list', () => {
    expect(headlineMetricKeys[0]).toBe('test_f1');
    expect(barMetricKeys.every((key) => headlineMetricKeys.includes(key))).toBe(true);
    expect(barMetricKeys).not.toContain('test_brier');
    expect(tableMetricKeys).toEqual([...headlineMetricKeys, 'threshold_global']);
  });

  test('each early-stopping metric names its validation and test keys', () => {
    expect(selectionMetricKeys.auprc).toEqual({
      validation: 'average_precision',
      test: 'test_average_precision',
    });
    expect(testKeyOf('loss')).toBe('test_brier');
    // A metric an older config names falls back to the test_ prefix.
    expect(testKeyOf('specificity')).toBe('test_specificity');
  });
});
