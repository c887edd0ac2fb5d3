// Cross-cutting helpers every other module may use: retries, logging, atomic files, seeds, signals.
export {
  defaultRetryPolicy,
  fullJitterDelay,
  HttpStatusError,
  isNetworkError,
  isRetryable,
  parseRetryAfter,
  withRetry,
} from './retry.js';
export type { RetryInfo, RetryPolicy, WithRetryOptions } from './retry.js';
export { createLogger, logLevels, resolveLogLevel } from './logger.js';
export type { Logger, LoggerOptions, LogLevel } from './logger.js';
export { writeFileAtomic, writeJsonAtomic } from './atomic.js';
export { camelCase, camelCaseKeys } from './camelCase.js';
export type { CamelCase, CamelCased } from './camelCase.js';
export { createRng, deriveSeed } from './rng.js';
export { interruptedExitCode, onInterrupt, wasInterrupted } from './signals.js';
export type { InterruptHandler, InterruptSignal } from './signals.js';
export { acquirePidLock, isStale, LockHeldError, processStartTime } from './pidLock.js';
export type { LockOwner, PidLock } from './pidLock.js';
