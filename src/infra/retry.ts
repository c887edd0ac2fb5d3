import pRetry from 'p-retry';

/** How a transient failure is retried. Mirrors the `logging.mlflow.retry` config block. */
export interface RetryPolicy {
  /** Upper bound of the first retry's delay; doubles per retry until `capMs`. */
  baseMs: number;
  capMs: number;
  /** Total attempts including the first one (1 = no retry). */
  maxAttempts: number;
  retryableStatuses: number[];
}

/** The same statuses MLflow's own Python client treats as transient, 5 attempts in all. */
export const defaultRetryPolicy: RetryPolicy = Object.freeze({
  baseMs: 500,
  capMs: 30000,
  maxAttempts: 5,
  retryableStatuses: Object.freeze([408, 429, 500, 502, 503, 504]) as number[],
});

/** An HTTP response whose status says the request failed. */
export class HttpStatusError extends Error {
  readonly status: number;
  /** From the response's Retry-After header, when it had a usable one. */
  readonly retryAfterMs?: number;
  /** The response body (possibly truncated by the caller), for the error message. */
  readonly body?: string;

  constructor(
    status: number,
    message?: string,
    options?: { retryAfterMs?: number; body?: string; cause?: unknown },
  ) {
    super(
      message ?? `HTTP ${status}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'HttpStatusError';
    this.status = status;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options?.body !== undefined) this.body = options.body;
  }
}

/**
 * Parses a Retry-After header (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date.
 * Returns milliseconds to wait (0 for a date in the past), or undefined when absent or unusable.
 */
export function parseRetryAfter(
  header: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP-date always names the weekday and month; without letters, Date.parse would read '-5' as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Codes Node and undici put on errors when the connection, not the server, failed. */
const networkErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * True when the error means the connection failed. undici's `fetch` wraps the socket error in a
 * `TypeError('fetch failed')` whose `cause` carries the code, so causes are followed.
 */
export function isNetworkError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const code = errorCode(current);
    if (code !== undefined && networkErrorCodes.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether `policy` retries `error`: a listed HTTP status, or a network failure. */
export function isRetryable(error: unknown, policy: RetryPolicy): boolean {
  if (error instanceof HttpStatusError) return policy.retryableStatuses.includes(error.status);
  return isNetworkError(error);
}

/**
 * "Full jitter" backoff: uniform in [0, min(cap, base * 2^retryIndex)], retryIndex 0 for the
 * first retry. Spreads clients out instead of retrying in lockstep.
 */
export function fullJitterDelay(
  retryIndex: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'capMs'>,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** retryIndex);
  return Math.floor(random() * (ceiling + 1));
}

export interface RetryInfo {
  /** The attempt that just failed (1-based). */
  attempt: number;
  delayMs: number;
  error: Error;
}

export interface WithRetryOptions {
  onRetry?: (info: RetryInfo) => void;
  signal?: AbortSignal;
  /** Source of randomness for the jitter; tests pass a fixed one. */
  random?: () => number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function validatePolicy(policy: RetryPolicy): void {
  const problems: string[] = [];
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    problems.push(`maxAttempts must be an integer >= 1, got ${String(policy.maxAttempts)}`);
  if (!(policy.baseMs >= 0)) problems.push(`baseMs must be >= 0, got ${String(policy.baseMs)}`);
  if (!(policy.capMs >= 0)) problems.push(`capMs must be >= 0, got ${String(policy.capMs)}`);
  if (problems.length > 0) throw new RangeError(`Invalid retry policy: ${problems.join('; ')}`);
}

/**
 * Runs `operation` until it succeeds, retrying only what `policy` calls transient (listed HTTP
 * statuses via HttpStatusError, network errors). The wait is the server's Retry-After when it gave
 * one, else full jitter. Any other error is rethrown at once as the very same object, and after
 * the last attempt the last error is rethrown unchanged.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  options: WithRetryOptions = {},
): Promise<T> {
  validatePolicy(policy);
  const random = options.random ?? Math.random;
  const run = async (attempt: number): Promise<T> => {
    try {
      return await operation(attempt);
    } catch (error) {
      if (error instanceof Error) throw error;
      throw new ForeignThrow(error);
    }
  };
  try {
    return await pRetry(run, {
      retries: policy.maxAttempts - 1,
      // p-retry's own backoff is off; the delay is computed and slept in shouldRetry below so that
      // Retry-After and full jitter apply and onRetry reports the real wait.
      minTimeout: 0,
      factor: 1,
      signal: options.signal,
      shouldRetry: async ({ error: wrapped, attemptNumber, retriesConsumed }) => {
        const error = wrapped instanceof ForeignThrow ? wrapped.original : wrapped;
        if (!isRetryable(error, policy)) return false;
        const retryAfterMs = error instanceof HttpStatusError ? error.retryAfterMs : undefined;
        // The server's Retry-After wins over the cap: retrying earlier would only be refused again.
        const delayMs = retryAfterMs ?? fullJitterDelay(retriesConsumed, policy, random);
        options.onRetry?.({ attempt: attemptNumber, delayMs, error: error as Error });
        if (delayMs > 0) await sleep(delayMs, options.signal);
        return true;
      },
    });
  } catch (error) {
    throw error instanceof ForeignThrow ? error.original : error;
  }
}

/**
 * Carries a thrown value that is not an Error of this realm (errors made in another vm context,
 * e.g. Node's socket errors seen from a jest sandbox, or a thrown string) through p-retry, which
 * would otherwise replace it with a TypeError; it is unwrapped before the caller sees it.
 */
class ForeignThrow extends Error {
  constructor(readonly original: unknown) {
    super(
      original instanceof Object && 'message' in original
        ? String(original.message)
        : String(original),
    );
  }
}
