import { HttpStatusError } from '../infra/index.js';

/**
 * A failed MLflow REST call. Extends HttpStatusError so the infra retry helper treats it by status
 * (503 "database is locked" is retried, 400 is not). The message always names MLflow's own
 * error_code when the server sent one, and never contains credentials.
 */
export class MlflowApiError extends HttpStatusError {
  /** MLflow's error_code (e.g. RESOURCE_ALREADY_EXISTS), or `HTTP_<status>` when the body had none. */
  readonly errorCode: string;
  /** What was called, e.g. `POST /api/2.0/mlflow/runs/create` (no host, no query string). */
  readonly endpoint: string;

  constructor(
    status: number,
    errorCode: string,
    serverMessage: string,
    endpoint: string,
    options?: { retryAfterMs?: number; body?: string },
  ) {
    super(
      status,
      `MLflow ${endpoint} failed: ${errorCode} (HTTP ${status}): ${serverMessage}`,
      options,
    );
    this.name = 'MlflowApiError';
    this.errorCode = errorCode;
    this.endpoint = endpoint;
  }
}

/** Thrown inside a run context to end the run as KILLED rather than FAILED. */
export class InterruptedError extends Error {
  constructor(message = 'Interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

/** The privacy guard refused a value; the message never repeats the offending text. */
export class PrivacyGuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivacyGuardError';
  }
}

/**
 * The server a spool is about to be replayed into does not hold the spool's runs (another server,
 * a wiped database, a deleted run or experiment): nothing was sent and the spool is untouched.
 */
export class SpoolTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpoolTargetError';
  }
}

/**
 * Turns a non-2xx response into an MlflowApiError. MLflow answers `{error_code, message}`, but
 * proxies, Flask's HTML pages, the host-check middleware, basic auth and the FastAPI artifact router
 * answer other shapes, so anything unparsable falls back to the status code.
 */
export function apiErrorFromResponse(
  status: number,
  bodyText: string,
  endpoint: string,
  retryAfterMs: number | undefined,
): MlflowApiError {
  let errorCode = `HTTP_${status}`;
  let message = bodyText.trim().slice(0, 500);
  try {
    const parsed = JSON.parse(bodyText) as {
      error_code?: unknown;
      message?: unknown;
      detail?: unknown;
    };
    if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
    if (typeof parsed.message === 'string') message = parsed.message;
    else if (typeof parsed.detail === 'string') message = parsed.detail;
  } catch {
    // Not JSON (HTML error page, plain text): keep the status-based code and the raw text.
  }
  if (message === '') message = '(empty response body)';
  return new MlflowApiError(status, errorCode, message, endpoint, {
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    body: bodyText.slice(0, 2000),
  });
}
