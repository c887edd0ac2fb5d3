import { Agent, request, type Dispatcher } from 'undici';
import {
  defaultRetryPolicy,
  parseRetryAfter,
  withRetry,
  type Logger,
  type RetryInfo,
  type RetryPolicy,
} from '../infra/index.js';
import {
  authorizationHeader,
  parseTrackingUri,
  tlsConnectOptions,
  type TrackingAuth,
  type TrackingTls,
} from './connection.js';
import { apiErrorFromResponse } from './errors.js';

/** Whether a call may be repeated blindly. 500 is retried only for idempotent calls (it also covers INVALID_STATE). */
export type Idempotency = 'idempotent' | 'guarded';

export interface HttpOptions {
  trackingUri: string;
  auth?: TrackingAuth;
  tls?: TrackingTls;
  retryPolicy?: RetryPolicy;
  logger?: Logger;
  /** Per-attempt headers and body timeout in ms (MLflow's Python client uses 120 s). */
  requestTimeoutMs?: number;
  onRetry?: (info: RetryInfo) => void;
}

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the base URL, starting with '/'. */
  path: string;
  query?: Record<string, string | number | string[] | undefined>;
  json?: unknown;
  idempotency?: Idempotency;
  signal?: AbortSignal;
}

/**
 * The wire layer: one undici Agent (keep-alive pool, TLS settings), the Authorization header kept in
 * a private field (never enumerable, never logged), every call through the infra retry helper.
 */
export class MlflowHttp {
  readonly baseUrl: string;
  readonly retryPolicy: RetryPolicy;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger | undefined;
  readonly #authorization: string | undefined;
  readonly #onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(options: HttpOptions) {
    const { baseUrl, auth: uriAuth } = parseTrackingUri(options.trackingUri);
    this.baseUrl = baseUrl;
    this.#authorization = authorizationHeader(options.auth ?? uriAuth);
    this.retryPolicy = options.retryPolicy ?? defaultRetryPolicy;
    this.logger = options.logger;
    this.#onRetry = options.onRetry;
    const timeout = options.requestTimeoutMs ?? 120_000;
    this.dispatcher = new Agent({
      connect: tlsConnectOptions(options.tls),
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: 4_000,
    });
  }

  /** Headers every request carries; the body-specific ones are added by the callers. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': 'mentallam-tracking', ...extra };
    if (this.#authorization !== undefined) headers.authorization = this.#authorization;
    return headers;
  }

  policyFor(idempotency: Idempotency): RetryPolicy {
    if (idempotency === 'idempotent') return this.retryPolicy;
    return {
      ...this.retryPolicy,
      retryableStatuses: this.retryPolicy.retryableStatuses.filter((status) => status !== 500),
    };
  }

  url(path: string, query?: RequestSpec['query']): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, item);
      else url.searchParams.append(key, String(value));
    }
    return url.toString();
  }

  /** Runs `operation` under the retry policy, logging each retry without any URL credentials. */
  retry<T>(
    endpoint: string,
    idempotency: Idempotency,
    operation: (attempt: number) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    return withRetry(operation, this.policyFor(idempotency), {
      ...(signal === undefined ? {} : { signal }),
      onRetry: (info) => {
        this.logger?.warn('MLflow request failed, retrying', {
          endpoint,
          attempt: info.attempt,
          delayMs: info.delayMs,
          error: info.error.message,
        });
        this.#onRetry?.(info);
      },
    });
  }

  /** One attempt of a JSON call; throws MlflowApiError on a non-2xx answer. */
  async jsonOnce<T>(spec: RequestSpec): Promise<T> {
    const endpoint = `${spec.method} ${spec.path}`;
    const hasBody = spec.json !== undefined;
    const response = await request(this.url(spec.path, spec.query), {
      method: spec.method,
      dispatcher: this.dispatcher,
      headers: this.headers(hasBody ? { 'content-type': 'application/json' } : {}),
      ...(hasBody ? { body: JSON.stringify(spec.json) } : {}),
      ...(spec.signal === undefined ? {} : { signal: spec.signal }),
    });
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300)
      throw apiErrorFromResponse(
        response.statusCode,
        text,
        endpoint,
        parseRetryAfter(headerValue(response.headers['retry-after'])),
      );
    if (text.trim() === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(
        `MLflow ${endpoint} answered HTTP ${response.statusCode} with a body that is not JSON`,
      );
    }
  }

  /** A JSON call with retries. */
  json<T>(spec: RequestSpec): Promise<T> {
    return this.retry(
      `${spec.method} ${spec.path}`,
      spec.idempotency ?? 'idempotent',
      () => this.jsonOnce<T>(spec),
      spec.signal,
    );
  }

  /** GET /health once, without retries: true when the server answers 200. */
  async health(timeoutMs = 5_000): Promise<boolean> {
    try {
      const response = await request(this.url('/health'), {
        method: 'GET',
        dispatcher: this.dispatcher,
        headers: this.headers(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body.dump();
      return response.statusCode === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
