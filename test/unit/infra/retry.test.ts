import {
  defaultRetryPolicy,
  fullJitterDelay,
  HttpStatusError,
  isRetryable,
  parseRetryAfter,
  withRetry,
} from '../../../src/infra/index.js';

describe('fullJitterDelay', () => {
  const policy = { baseMs: 100, capMs: 1000 };

  test('stays within [0, min(cap, base * 2^n)] for every retry index', () => {
    for (let n = 0; n < 12; n++) {
      const ceiling = Math.min(1000, 100 * 2 ** n);
      expect(fullJitterDelay(n, policy, () => 0)).toBe(0);
      expect(fullJitterDelay(n, policy, () => 0.999999999)).toBe(ceiling);
      for (let i = 0; i < 200; i++) {
        const delay = fullJitterDelay(n, policy);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });

  test('spreads over the range rather than clustering at the ceiling', () => {
    const delays = Array.from({ length: 2000 }, () => fullJitterDelay(3, policy));
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    // Uniform on [0, 800]: mean 400.
    expect(mean).toBeGreaterThan(340);
    expect(mean).toBeLessThan(460);
  });
});

describe('parseRetryAfter', () => {
  test('delay-seconds', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
  });
  test('HTTP-date, relative to now, never negative', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });
  test('absent or unusable', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('-5')).toBeUndefined();
  });
});

describe('isRetryable', () => {
  test('statuses from the policy only', () => {
    for (const status of [408, 429, 500, 502, 503, 504])
      expect(isRetryable(new HttpStatusError(status), defaultRetryPolicy)).toBe(true);
    for (const status of [400, 401, 403, 404, 409, 501])
      expect(isRetryable(new HttpStatusError(status), defaultRetryPolicy)).toBe(false);
  });
  test('network codes, also when wrapped in a cause (undici fetch)', () => {
    const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    expect(isRetryable(socket, defaultRetryPolicy)).toBe(true);
    expect(isRetryable(new TypeError('fetch failed', { cause: socket }), defaultRetryPolicy)).toBe(
      true,
    );
    expect(isRetryable(Object.assign(new Error('x'), { code: 'ENOENT' }), defaultRetryPolicy)).toBe(
      false,
    );
    expect(isRetryable(new Error('plain'), defaultRetryPolicy)).toBe(false);
  });
});

describe('withRetry without a server', () => {
  const policy = { ...defaultRetryPolicy, baseMs: 1, capMs: 2 };

  test('a programming error propagates at once, unchanged', async () => {
    const bug = new RangeError('index out of range');
    let calls = 0;
    const caught = await withRetry(async () => {
      calls++;
      throw bug;
    }, policy).catch((error: unknown) => error);
    expect(caught).toBe(bug);
    expect(calls).toBe(1);
  });

  test('a non-network TypeError is not retried either', async () => {
    const bug = new TypeError('x is not a function');
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw bug;
      }, policy),
    ).rejects.toBe(bug);
    expect(calls).toBe(1);
  });

  test('a thrown non-Error value comes back as itself', async () => {
    await expect(
      withRetry(async () => {
        throw 'plain string';
      }, policy),
    ).rejects.toBe('plain string');
  });

  test('delays follow the injected random source', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 4) throw new HttpStatusError(503);
        return 'done';
      },
      { ...policy, baseMs: 2, capMs: 5 },
      { random: () => 0.5, onRetry: (info) => delays.push(info.delayMs) },
    );
    expect(result).toBe('done');
    // floor(0.5 * (min(5, 2 * 2^n) + 1)) for n = 0, 1, 2
    expect(delays).toEqual([1, 2, 3]);
  });

  test('an invalid policy is refused before any attempt', async () => {
    let calls = 0;
    await expect(withRetry(async () => ++calls, { ...policy, maxAttempts: 0 })).rejects.toThrow(
      /maxAttempts must be an integer >= 1, got 0/,
    );
    expect(calls).toBe(0);
  });
});
