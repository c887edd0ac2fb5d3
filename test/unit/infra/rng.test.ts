import { createRng, deriveSeed } from '../../../src/infra/index.js';

test('same seed, same sequence; different seed, different sequence', () => {
  const a = createRng(42);
  const b = createRng(42);
  const c = createRng(43);
  const seqA = Array.from({ length: 100 }, () => a());
  expect(Array.from({ length: 100 }, () => b())).toEqual(seqA);
  expect(Array.from({ length: 100 }, () => c())).not.toEqual(seqA);
});

test('pinned values, so a change of algorithm cannot pass unnoticed', () => {
  const rng = createRng(42);
  const first = [rng(), rng(), rng()];
  // mulberry32(42), computed once and frozen here.
  expect(first).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
});

test('uniform on [0, 1)', () => {
  const rng = createRng(7);
  const n = 20000;
  const bins = new Array<number>(10).fill(0);
  for (let i = 0; i < n; i++) {
    const x = rng();
    expect(x).toBeGreaterThanOrEqual(0);
    expect(x).toBeLessThan(1);
    bins[Math.floor(x * 10)]!++;
  }
  for (const count of bins) expect(Math.abs(count - n / 10)).toBeLessThan(n / 10 / 5);
});

test('a non-finite seed is refused', () => {
  expect(() => createRng(Number.NaN)).toThrow(/seed must be a finite number/);
});

test('deriveSeed is stable and separates labels', () => {
  expect(deriveSeed(42, 'fold', 1)).toBe(deriveSeed(42, 'fold', 1));
  expect(deriveSeed(42, 'fold', 1)).not.toBe(deriveSeed(42, 'fold', 2));
  expect(deriveSeed(42, 'fold', 1)).not.toBe(deriveSeed(43, 'fold', 1));
  const seed = deriveSeed(42, 'x');
  expect(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32).toBe(true);
});
