import { EarlyStopping } from '../../../src/engine/earlyStopping.js';

describe('EarlyStopping', () => {
  test('stops after `patience` evaluations without an improvement beyond min_delta', () => {
    const stopping = new EarlyStopping({ mode: 'max', patience: 2, minDelta: 0.01 });
    expect(stopping.update(0.5, 1)).toEqual({ improved: true, shouldStop: false });
    expect(stopping.update(0.505, 2)).toEqual({ improved: false, shouldStop: false });
    expect(stopping.update(0.52, 3)).toEqual({ improved: true, shouldStop: false });
    expect(stopping.update(0.52, 4)).toEqual({ improved: false, shouldStop: false });
    expect(stopping.update(0.1, 5)).toEqual({ improved: false, shouldStop: true });
    expect(stopping.snapshot()).toEqual({
      best: 0.52,
      bestStep: 3,
      evaluationsWithoutImprovement: 2,
    });
  });

  test('min mode and NaN never counts as best', () => {
    const stopping = new EarlyStopping({ mode: 'min', patience: 3, minDelta: 0 });
    expect(stopping.update(Number.NaN, 1).improved).toBe(false);
    expect(stopping.update(1.0, 2).improved).toBe(true);
    expect(stopping.update(0.9, 3).improved).toBe(true);
    expect(stopping.update(0.95, 4).improved).toBe(false);
  });

  test('restores a snapshot (resume)', () => {
    const stopping = new EarlyStopping({ mode: 'max', patience: 2, minDelta: 0 });
    stopping.restore({ best: 0.7, bestStep: 10, evaluationsWithoutImprovement: 1 });
    expect(stopping.update(0.6, 11)).toEqual({ improved: false, shouldStop: true });
  });

  test('rejects a nonsensical configuration', () => {
    expect(() => new EarlyStopping({ mode: 'max', patience: 0, minDelta: 0 })).toThrow(/patience/);
  });
});
