import { learningRateAt } from '../../../src/engine/schedule.js';

describe('learningRateAt', () => {
  const base = { peakLr: 1e-3, warmupSteps: 10, totalSteps: 110 };

  test('warm-up rises linearly to the peak', () => {
    const schedule = { ...base, schedule: 'linear' as const };
    expect(learningRateAt(0, schedule)).toBeCloseTo(1e-4, 12);
    expect(learningRateAt(4, schedule)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(9, schedule)).toBeCloseTo(1e-3, 12);
  });

  test('linear decays to zero at the last step', () => {
    const schedule = { ...base, schedule: 'linear' as const };
    expect(learningRateAt(10, schedule)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(60, schedule)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(110, schedule)).toBe(0);
  });

  test('cosine is half a cosine from the peak to zero', () => {
    const schedule = { ...base, schedule: 'cosine' as const };
    expect(learningRateAt(10, schedule)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(60, schedule)).toBeCloseTo(5e-4, 12);
    expect(learningRateAt(35, schedule)).toBeCloseTo(1e-3 * 0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(learningRateAt(110, schedule)).toBeCloseTo(0, 12);
  });

  test('constant stays at the peak after warm-up', () => {
    expect(learningRateAt(100, { ...base, schedule: 'constant' })).toBe(1e-3);
  });
});
