import { camelCase, camelCaseKeys } from '../../../src/infra/index.js';

describe('camelCaseKeys', () => {
  test('renames every key of nested objects and keeps arrays and values', () => {
    const training = {
      weight_decay: 0.01,
      max_steps: null,
      early_stopping: { metric: 'f1', min_delta: 0 },
      folds: [0, 1],
    };
    const converted = camelCaseKeys(training);
    expect(converted).toEqual({
      weightDecay: 0.01,
      maxSteps: null,
      earlyStopping: { metric: 'f1', minDelta: 0 },
      folds: [0, 1],
    });
    // The type follows: these are compile-time checked keys, not strings.
    const typed: { weightDecay: number; earlyStopping: { minDelta: number } } = converted;
    expect(typed.earlyStopping.minDelta).toBe(0);
    expect(converted.folds).toBe(training.folds);
  });

  test('one rule for names', () => {
    expect(camelCase('retryable_statuses')).toBe('retryableStatuses');
    expect(camelCase('use_rslora')).toBe('useRslora');
    expect(camelCase('lr')).toBe('lr');
  });
});
