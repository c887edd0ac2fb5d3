import { isAbsolute } from 'node:path';

/** MLflow's per-request limits for runs/log-batch (mlflow/utils/validation.py). */
export const batchLimits = Object.freeze({
  metrics: 1000,
  params: 100,
  tags: 100,
  entities: 1000,
});

/** Longest param value the server keeps; longer values are truncated (server-side, silently). */
export const maxParamValueLength = 6000;
/** Longest run tag value the server keeps. */
export const maxTagValueLength = 8000;
export const maxKeyLength = 250;
export const truncationMarker = '...[truncated]';

export interface Metric {
  key: string;
  value: number;
  /** Unix milliseconds; defaults to now when logged. */
  timestamp?: number;
  step?: number;
}

/** A metric as MLflow sends and stores it: timestamp and step always set. */
export interface LoggedMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface KeyValue {
  key: string;
  value: string;
}

// The 3.x server's key charset (colon allowed on POSIX servers).
const keyPattern = /^[/\w.\- :]+$/;

/** Throws when MLflow would reject the key, naming the key and the rule, before any request is sent. */
export function validateKey(kind: 'metric' | 'param' | 'tag', key: string): void {
  if (typeof key !== 'string' || key.length === 0)
    throw new Error(`Invalid ${kind} key: must be a non-empty string`);
  if (key.length > maxKeyLength)
    throw new Error(
      `Invalid ${kind} key '${key.slice(0, 40)}…': longer than ${maxKeyLength} characters`,
    );
  if (!keyPattern.test(key))
    throw new Error(
      `Invalid ${kind} key '${key}': only letters, digits, '_', '-', '.', ' ', ':' and '/' are allowed`,
    );
  if (
    key.startsWith('/') ||
    key.includes('//') ||
    key.split('/').some((part) => part === '..' || part === '.')
  )
    throw new Error(
      `Invalid ${kind} key '${key}': must be a relative path without '.', '..' or '//'`,
    );
}

/** Truncates with a visible marker so a shortened value is never mistaken for the real one. */
export function truncateValue(value: string, limit: number): string {
  if (value.length <= limit) return value;
  return value.slice(0, limit - truncationMarker.length) + truncationMarker;
}

/** JSON number for finite values; the protobuf-JSON strings MLflow expects for NaN and ±Infinity. */
export function encodeMetricValue(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** Reverses encodeMetricValue; the sqlite store returns ±Infinity as ±1.797e308, mapped back too. */
export function decodeMetricValue(value: unknown): number {
  if (typeof value === 'number') {
    if (value >= 1.7976931348623157e308) return Infinity;
    if (value <= -1.7976931348623157e308) return -Infinity;
    return value;
  }
  if (value === 'NaN') return NaN;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return Number(value);
}

/** Fills timestamp (now, ms) and step (0) and checks both are what MLflow accepts. */
export function normalizeMetric(metric: Metric, now: number): LoggedMetric {
  validateKey('metric', metric.key);
  if (typeof metric.value !== 'number')
    throw new Error(`Metric '${metric.key}': value must be a number, got ${typeof metric.value}`);
  const timestamp = metric.timestamp ?? now;
  const step = metric.step ?? 0;
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw new Error(
      `Metric '${metric.key}': timestamp must be a non-negative integer of ms, got ${timestamp}`,
    );
  if (!Number.isSafeInteger(step))
    throw new Error(`Metric '${metric.key}': step must be a safe integer, got ${step}`);
  return { key: metric.key, value: metric.value, timestamp, step };
}

export interface BatchChunk {
  metrics: LoggedMetric[];
  params: KeyValue[];
  tags: KeyValue[];
}

/**
 * Splits one logical batch into requests MLflow accepts: ≤1000 metrics, ≤100 params, ≤100 tags and
 * ≤1000 entities per request. Params and tags go first (the first chunks), then metrics in their
 * original order, because MLflow keeps metric order within a batch.
 */
export function splitBatch(batch: BatchChunk): BatchChunk[] {
  const chunks: BatchChunk[] = [];
  let current: BatchChunk = { metrics: [], params: [], tags: [] };
  const size = (c: BatchChunk) => c.metrics.length + c.params.length + c.tags.length;
  const flush = () => {
    if (size(current) > 0) chunks.push(current);
    current = { metrics: [], params: [], tags: [] };
  };
  const add = <K extends keyof BatchChunk>(kind: K, item: BatchChunk[K][number], limit: number) => {
    if (current[kind].length >= limit || size(current) >= batchLimits.entities) flush();
    (current[kind] as BatchChunk[K][number][]).push(item);
  };
  for (const param of batch.params) add('params', param, batchLimits.params);
  for (const tag of batch.tags) add('tags', tag, batchLimits.tags);
  for (const metric of batch.metrics) add('metrics', metric, batchLimits.metrics);
  flush();
  return chunks;
}

/**
 * Flattens a nested config into dotted param keys (`training.lr`), arrays by index
 * (`model.targets.0`). Values become strings (JSON for non-strings) so `1` and `"1"` stay apart;
 * values over MLflow's limit are truncated with a marker (the caller logs the full config as an
 * artifact).
 */
export function flattenParams(config: unknown, prefix = ''): KeyValue[] {
  const out: KeyValue[] = [];
  const visit = (value: unknown, key: string) => {
    if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
      const entries = Array.isArray(value)
        ? value.map((item, index) => [String(index), item] as const)
        : Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) {
        if (key !== '') out.push({ key, value: Array.isArray(value) ? '[]' : '{}' });
        return;
      }
      for (const [child, item] of entries) visit(item, key === '' ? child : `${key}.${child}`);
      return;
    }
    if (value === undefined) return;
    const text =
      typeof value === 'string'
        ? value
        : value instanceof Date
          ? value.toISOString()
          : JSON.stringify(value);
    out.push({ key, value: truncateValue(text ?? String(value), maxParamValueLength) });
  };
  visit(config, prefix);
  return out;
}

/**
 * Checks an artifact path is relative, normalized and free of `..`, so nothing can escape the run's
 * artifact directory (the server refuses these too, but only after a possibly huge upload).
 */
export function validateArtifactPath(path: string, what = 'artifact path'): string {
  if (typeof path !== 'string') throw new Error(`Invalid ${what}: not a string`);
  const normalized = path.replace(/\\/g, '/');
  if (normalized.includes('\0')) throw new Error(`Invalid ${what} '${path}': contains NUL`);
  if (isAbsolute(path) || normalized.startsWith('/') || /^[a-zA-Z]:/.test(normalized))
    throw new Error(`Invalid ${what} '${path}': must be relative`);
  const parts = normalized.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.some((part) => part === '..'))
    throw new Error(`Invalid ${what} '${path}': must not contain '..'`);
  return parts.join('/');
}

/** Joins validated segments, skipping empty ones. */
export function joinArtifactPath(...parts: (string | undefined)[]): string {
  return parts
    .filter((part): part is string => part !== undefined && part !== '')
    .map((part) => validateArtifactPath(part))
    .filter((part) => part !== '')
    .join('/');
}
