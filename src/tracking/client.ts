import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import type { Logger, RetryInfo, RetryPolicy } from '../infra/index.js';
import { parseRetryAfter } from '../infra/index.js';
import { connectionFromEnv, redactUri, type TrackingAuth, type TrackingTls } from './connection.js';
import { apiErrorFromResponse, MlflowApiError } from './errors.js';
import { headerValue, MlflowHttp } from './http.js';
import { PrivacyGuard } from './privacyGuard.js';
import type {
  ArtifactEntry,
  Experiment,
  ModelVersion,
  RegisteredModel,
  Run,
  RunInfo,
  RunStatus,
  WireExperiment,
  WireModelVersion,
  WireRun,
  WireTag,
} from './types.js';
import {
  decodeMetricValue,
  encodeMetricValue,
  flattenParams,
  joinArtifactPath,
  maxParamValueLength,
  maxTagValueLength,
  normalizeMetric,
  splitBatch,
  truncateValue,
  validateArtifactPath,
  validateKey,
  type KeyValue,
  type LoggedMetric,
  type Metric,
} from './validation.js';

/** The tag that makes a non-idempotent create findable after an ambiguous failure. */
export const requestIdTag = 'mentallam.requestId';

export interface MlflowClientOptions {
  /** http(s) URI of the tracking server (credentials in it are moved to the auth header). */
  trackingUri: string;
  auth?: TrackingAuth;
  tls?: TrackingTls;
  retryPolicy?: RetryPolicy;
  logger?: Logger;
  requestTimeoutMs?: number;
  onRetry?: (info: RetryInfo) => void;
  /** Minimum run of characters shared with a guarded text that makes the guard refuse a value. */
  guardMinMatchLength?: number;
}

export interface LogBatchInput {
  metrics?: Metric[];
  params?: KeyValue[] | Record<string, unknown>;
  tags?: KeyValue[] | Record<string, string>;
}

export interface CreateRunInput {
  experimentId: string;
  runName?: string;
  /** Unix ms; default now. */
  startTime?: number;
  tags?: Record<string, string>;
  /**
   * The request-id tag's value (default a fresh UUID). Creating again with the same id after an
   * ambiguous failure, after findRunByRequestId found nothing, never yields two runs.
   */
  requestId?: string;
  /** Ends a SpoolingTracker's wait for an unreachable server (e.g. on Ctrl-C). */
  signal?: AbortSignal;
}

export interface SearchRunsInput {
  experimentIds: string[];
  filter?: string;
  /** Default `attributes.start_time ASC`; `run_id` is always appended as the tie-break. */
  orderBy?: string[];
  runViewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
  /** Page size (≤ 50000). */
  pageSize?: number;
  /** Stop after this many runs. */
  maxRuns?: number;
}

export interface CreateModelVersionInput {
  name: string;
  runId: string;
  /** Run-relative artifact path of the model directory, e.g. `model`. */
  artifactPath: string;
  tags?: Record<string, string>;
  description?: string;
}

function tagsToRecord(tags: WireTag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const tag of tags ?? []) out[tag.key] = tag.value ?? '';
  return out;
}

function recordToTags(record: Record<string, string> | undefined): KeyValue[] {
  return Object.entries(record ?? {}).map(([key, value]) => ({ key, value }));
}

function toKeyValues(
  input: KeyValue[] | Record<string, unknown> | undefined,
  stringify: (value: unknown) => string,
): KeyValue[] {
  if (input === undefined) return [];
  if (Array.isArray(input)) return input;
  return Object.entries(input).map(([key, value]) => ({ key, value: stringify(value) }));
}

function paramString(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}

function toRunInfo(info: WireRunInfo): RunInfo {
  const out: RunInfo = {
    runId: info.run_id ?? info.run_uuid ?? '',
    experimentId: info.experiment_id,
    runName: info.run_name ?? '',
    status: (info.status ?? 'RUNNING') as RunStatus,
    artifactUri: info.artifact_uri ?? '',
    lifecycleStage: (info.lifecycle_stage ?? 'active') as RunInfo['lifecycleStage'],
  };
  if (info.start_time !== undefined) out.startTime = info.start_time;
  if (info.end_time !== undefined) out.endTime = info.end_time;
  return out;
}
type WireRunInfo = WireRun['info'];

function toRun(run: WireRun): Run {
  const metrics: Record<string, number> = {};
  for (const metric of run.data?.metrics ?? [])
    metrics[metric.key] = decodeMetricValue(metric.value);
  return {
    info: toRunInfo(run.info),
    metrics,
    params: tagsToRecord(run.data?.params),
    tags: tagsToRecord(run.data?.tags),
  };
}

function toExperiment(experiment: WireExperiment): Experiment {
  return {
    experimentId: experiment.experiment_id,
    name: experiment.name,
    artifactLocation: experiment.artifact_location ?? '',
    lifecycleStage: (experiment.lifecycle_stage ?? 'active') as Experiment['lifecycleStage'],
    tags: tagsToRecord(experiment.tags),
  };
}

function toModelVersion(version: WireModelVersion): ModelVersion {
  const out: ModelVersion = {
    name: version.name,
    version: String(version.version),
    source: version.source ?? '',
    tags: tagsToRecord(version.tags),
    aliases: version.aliases ?? [],
  };
  if (version.run_id !== undefined && version.run_id !== '') out.runId = version.run_id;
  if (version.status !== undefined) out.status = version.status;
  return out;
}

/** Quotes a value for MLflow's search grammar (single quotes, backslash-escaped). */
function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function isErrorCode(error: unknown, ...codes: string[]): boolean {
  return error instanceof MlflowApiError && codes.includes(error.errorCode);
}

/**
 * MLflow REST client (API 2.0, checked against server 3.17): experiments, runs, batched logging,
 * metric history, artifacts through the mlflow-artifacts proxy, and the model registry. Every call is
 * retried per the policy; creates that are not idempotent carry a request-id tag and look for a
 * previous attempt's result before creating again.
 */
export class MlflowClient {
  /** The tracking URI with credentials removed: safe to log and to save. */
  readonly trackingUri: string;
  readonly guard: PrivacyGuard;
  private readonly http: MlflowHttp;
  private readonly artifactUris = new Map<string, string>();

  constructor(options: MlflowClientOptions) {
    this.trackingUri = redactUri(options.trackingUri);
    this.http = new MlflowHttp(options);
    this.guard = new PrivacyGuard(
      options.guardMinMatchLength === undefined
        ? {}
        : { minMatchLength: options.guardMinMatchLength },
    );
  }

  /** A client from MLFLOW_TRACKING_URI / _USERNAME / _PASSWORD / _TOKEN / _INSECURE_TLS / _SERVER_CERT_PATH. */
  static fromEnv(
    env: NodeJS.ProcessEnv = process.env,
    options: Partial<MlflowClientOptions> = {},
  ): MlflowClient {
    const connection = connectionFromEnv(env);
    const trackingUri = options.trackingUri ?? connection.trackingUri;
    if (trackingUri === undefined) throw new Error('MLFLOW_TRACKING_URI is not set');
    return new MlflowClient({
      ...(connection.auth === undefined ? {} : { auth: connection.auth }),
      ...(connection.tls === undefined ? {} : { tls: connection.tls }),
      ...options,
      trackingUri,
    });
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  get retryPolicy(): RetryPolicy {
    return this.http.retryPolicy;
  }

  /** Keeps credentials out of JSON dumps of objects holding a client. */
  toJSON(): { trackingUri: string } {
    return { trackingUri: this.trackingUri };
  }

  /** Adds texts (e.g. every post of the data set) that no param, tag or metric key/value may contain. */
  guardTexts(texts: Iterable<string>): void {
    this.guard.add(texts);
  }

  /** true when GET /health answers 200 (one attempt, no retry). */
  health(timeoutMs?: number): Promise<boolean> {
    return this.http.health(timeoutMs);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  // ---------------------------------------------------------------- experiments

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const response = await this.http.json<{ experiment: WireExperiment }>({
        method: 'GET',
        path: '/api/2.0/mlflow/experiments/get-by-name',
        query: { experiment_name: name },
      });
      return toExperiment(response.experiment);
    } catch (error) {
      if (isErrorCode(error, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw error;
    }
  }

  /** The experiment with this id (active or deleted); undefined when the server has none. */
  async getExperiment(experimentId: string): Promise<Experiment | undefined> {
    try {
      const response = await this.http.json<{ experiment: WireExperiment }>({
        method: 'GET',
        path: '/api/2.0/mlflow/experiments/get',
        query: { experiment_id: experimentId },
      });
      return toExperiment(response.experiment);
    } catch (error) {
      if (isErrorCode(error, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw error;
    }
  }

  /**
   * The active experiment with this name, created if absent and restored if soft-deleted (a deleted
   * experiment keeps its name, so creating it again would fail with RESOURCE_ALREADY_EXISTS).
   */
  async getOrCreateExperiment(
    name: string,
    options: { artifactLocation?: string; tags?: Record<string, string> } = {},
  ): Promise<Experiment> {
    this.guard.check('the experiment name', name);
    for (let round = 0; round < 3; round++) {
      const existing = await this.getExperimentByName(name);
      if (existing !== undefined) {
        if (existing.lifecycleStage !== 'deleted') return existing;
        await this.http.json({
          method: 'POST',
          path: '/api/2.0/mlflow/experiments/restore',
          json: { experiment_id: existing.experimentId },
        });
        return { ...existing, lifecycleStage: 'active' };
      }
      try {
        // guarded: a retried create after a lost answer sees RESOURCE_ALREADY_EXISTS and loops to the get.
        const created = await this.http.json<{ experiment_id: string }>({
          method: 'POST',
          path: '/api/2.0/mlflow/experiments/create',
          idempotency: 'guarded',
          json: {
            name,
            ...(options.artifactLocation === undefined
              ? {}
              : { artifact_location: options.artifactLocation }),
            tags: recordToTags(options.tags),
          },
        });
        const experiment = await this.http.json<{ experiment: WireExperiment }>({
          method: 'GET',
          path: '/api/2.0/mlflow/experiments/get',
          query: { experiment_id: created.experiment_id },
        });
        return toExperiment(experiment.experiment);
      } catch (error) {
        if (!isErrorCode(error, 'RESOURCE_ALREADY_EXISTS')) throw error;
        // Created concurrently (or by our own lost attempt): look it up again.
      }
    }
    throw new Error(`Could not get or create MLflow experiment '${name}'`);
  }

  // ---------------------------------------------------------------- runs

  /**
   * Creates a run. A retry after an ambiguous failure first searches for the run by its
   * request-id tag, so a create whose answer was lost never yields a second run.
   */
  async createRun(input: CreateRunInput): Promise<Run> {
    const requestId = input.requestId ?? randomUUID();
    const tags: Record<string, string> = { ...input.tags, [requestIdTag]: requestId };
    if (input.runName !== undefined) tags['mlflow.runName'] = input.runName;
    this.checkEntries('tag', recordToTags(tags));
    const body = {
      experiment_id: input.experimentId,
      ...(input.runName === undefined ? {} : { run_name: input.runName }),
      start_time: input.startTime ?? Date.now(),
      tags: recordToTags(tags).map((tag) => ({
        key: tag.key,
        value: truncateValue(tag.value, maxTagValueLength),
      })),
    };
    const endpoint = 'POST /api/2.0/mlflow/runs/create';
    const run = await this.http.retry(endpoint, 'guarded', async (attempt) => {
      if (attempt > 1) {
        const previous = await this.findRunByRequestId(input.experimentId, requestId);
        if (previous !== undefined) return previous;
      }
      const response = await this.http.jsonOnce<{ run: WireRun }>({
        method: 'POST',
        path: '/api/2.0/mlflow/runs/create',
        json: body,
      });
      return toRun(response.run);
    });
    this.artifactUris.set(run.info.runId, run.info.artifactUri);
    return run;
  }

  /** The run created with this request id (one attempt, no retry), if there is one. */
  async findRunByRequestId(experimentId: string, requestId: string): Promise<Run | undefined> {
    const response = await this.http.jsonOnce<{ runs?: WireRun[] }>({
      method: 'POST',
      path: '/api/2.0/mlflow/runs/search',
      json: {
        experiment_ids: [experimentId],
        filter: `tags.\`${requestIdTag}\` = ${quote(requestId)}`,
        run_view_type: 'ALL',
        max_results: 10,
      },
    });
    const found = response.runs?.[0];
    return found === undefined ? undefined : toRun(found);
  }

  /** Sets status / end time / name. Ending a run is `updateRun(id, { status: 'FINISHED', endTime: Date.now() })`. */
  async updateRun(
    runId: string,
    update: { status?: RunStatus; endTime?: number; runName?: string },
  ): Promise<RunInfo> {
    if (update.runName !== undefined) this.guard.check('the run name', update.runName);
    const response = await this.http.json<{ run_info: WireRunInfo }>({
      method: 'POST',
      path: '/api/2.0/mlflow/runs/update',
      json: {
        run_id: runId,
        ...(update.status === undefined ? {} : { status: update.status }),
        ...(update.endTime === undefined ? {} : { end_time: update.endTime }),
        ...(update.runName === undefined ? {} : { run_name: update.runName }),
      },
    });
    return toRunInfo(response.run_info);
  }

  async getRun(runId: string): Promise<Run> {
    const response = await this.http.json<{ run: WireRun }>({
      method: 'GET',
      path: '/api/2.0/mlflow/runs/get',
      query: { run_id: runId },
    });
    const run = toRun(response.run);
    this.artifactUris.set(run.info.runId, run.info.artifactUri);
    return run;
  }

  /** Soft-deletes a run (MLflow's `gc` purges it later). */
  async deleteRun(runId: string): Promise<void> {
    await this.http.json({
      method: 'POST',
      path: '/api/2.0/mlflow/runs/delete',
      json: { run_id: runId },
    });
  }

  /**
   * All runs matching, across pages. MLflow pages by offset, so rows created between pages shift
   * later pages: the order always ends with the run id (stable) and runs are de-duplicated by id.
   */
  async searchRuns(input: SearchRunsInput): Promise<Run[]> {
    const orderBy = [...(input.orderBy ?? ['attributes.start_time ASC'])];
    if (!orderBy.some((entry) => /^(attributes\.|attr\.|run\.)?run_id\b/.test(entry)))
      orderBy.push('attributes.run_id ASC');
    const pageSize = Math.min(input.pageSize ?? 1000, 50000);
    const seen = new Set<string>();
    const runs: Run[] = [];
    let pageToken: string | undefined;
    do {
      const response = await this.http.json<{ runs?: WireRun[]; next_page_token?: string }>({
        method: 'POST',
        path: '/api/2.0/mlflow/runs/search',
        json: {
          experiment_ids: input.experimentIds,
          ...(input.filter === undefined ? {} : { filter: input.filter }),
          run_view_type: input.runViewType ?? 'ACTIVE_ONLY',
          max_results: pageSize,
          order_by: orderBy,
          ...(pageToken === undefined ? {} : { page_token: pageToken }),
        },
      });
      for (const wire of response.runs ?? []) {
        const run = toRun(wire);
        if (seen.has(run.info.runId)) continue;
        seen.add(run.info.runId);
        runs.push(run);
        if (input.maxRuns !== undefined && runs.length >= input.maxRuns) return runs;
      }
      pageToken = response.next_page_token === '' ? undefined : response.next_page_token;
    } while (pageToken !== undefined);
    return runs;
  }

  // ---------------------------------------------------------------- logging

  /**
   * Logs metrics, params and tags, split into requests within MLflow's limits (1000 metrics,
   * 100 params, 100 tags, 1000 entities). Keys are checked before anything is sent; values pass the
   * privacy guard; params longer than 6000 and tags longer than 8000 characters are truncated with a
   * marker. NaN/±Infinity metrics are sent as MLflow's "NaN"/"Infinity" strings.
   */
  async logBatch(
    runId: string,
    input: LogBatchInput,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const now = Date.now();
    const metrics = (input.metrics ?? []).map((metric) => normalizeMetric(metric, now));
    const params = dedupeParams(toKeyValues(input.params, paramString)).map((param) => ({
      key: param.key,
      value: truncateValue(param.value, maxParamValueLength),
    }));
    const tags = toKeyValues(input.tags, String).map((tag) => ({
      key: tag.key,
      value: truncateValue(tag.value, maxTagValueLength),
    }));
    this.guardCheckBatch({ metrics, params, tags });
    for (const chunk of splitBatch({ metrics, params, tags })) {
      await this.http.json({
        method: 'POST',
        path: '/api/2.0/mlflow/runs/log-batch',
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        json: {
          run_id: runId,
          metrics: chunk.metrics.map((metric) => ({
            key: metric.key,
            value: encodeMetricValue(metric.value),
            timestamp: metric.timestamp,
            step: metric.step,
          })),
          params: chunk.params,
          tags: chunk.tags,
        },
      });
    }
  }

  logMetrics(runId: string, metrics: Metric[]): Promise<void> {
    return this.logBatch(runId, { metrics });
  }

  logMetric(
    runId: string,
    key: string,
    value: number,
    step?: number,
    timestamp?: number,
  ): Promise<void> {
    return this.logBatch(runId, {
      metrics: [
        {
          key,
          value,
          ...(step === undefined ? {} : { step }),
          ...(timestamp === undefined ? {} : { timestamp }),
        },
      ],
    });
  }

  /** Params are write-once in MLflow: the same value again is a no-op, a different one is INVALID_PARAMETER_VALUE. */
  logParams(runId: string, params: KeyValue[] | Record<string, unknown>): Promise<void> {
    return this.logBatch(runId, { params });
  }

  /** Logs a nested config as flattened dotted params (`training.lr`); log the full config as an artifact too. */
  logConfigParams(runId: string, config: unknown, prefix = ''): Promise<void> {
    return this.logBatch(runId, { params: flattenParams(config, prefix) });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    validateKey('tag', key);
    this.checkEntries('tag', [{ key, value }]);
    await this.http.json({
      method: 'POST',
      path: '/api/2.0/mlflow/runs/set-tag',
      json: { run_id: runId, key, value: truncateValue(value, maxTagValueLength) },
    });
  }

  setTags(runId: string, tags: Record<string, string>): Promise<void> {
    return this.logBatch(runId, { tags });
  }

  /** Every logged value of one metric, in MLflow's order (timestamp, step, value), all pages. */
  async getMetricHistory(runId: string, key: string): Promise<LoggedMetric[]> {
    const out: LoggedMetric[] = [];
    let pageToken: string | undefined;
    do {
      const response = await this.http.json<{
        metrics?: { key: string; value: unknown; timestamp?: number; step?: number }[];
        next_page_token?: string;
      }>({
        method: 'GET',
        path: '/api/2.0/mlflow/metrics/get-history',
        query: { run_id: runId, metric_key: key, max_results: 25000, page_token: pageToken },
      });
      for (const metric of response.metrics ?? [])
        out.push({
          key: metric.key,
          value: decodeMetricValue(metric.value),
          timestamp: metric.timestamp ?? 0,
          step: metric.step ?? 0,
        });
      pageToken = response.next_page_token === '' ? undefined : response.next_page_token;
    } while (pageToken !== undefined);
    return out;
  }

  /**
   * Checks keys against MLflow's rules and keys/values against the privacy guard, without sending
   * anything (the spool calls it so refused values never reach its file either).
   */
  guardCheckBatch(batch: {
    metrics?: { key: string }[];
    params?: KeyValue[];
    tags?: KeyValue[];
  }): void {
    for (const param of batch.params ?? []) validateKey('param', param.key);
    for (const tag of batch.tags ?? []) validateKey('tag', tag.key);
    for (const metric of batch.metrics ?? []) validateKey('metric', metric.key);
    this.checkEntries('param', batch.params ?? []);
    this.checkEntries('tag', batch.tags ?? []);
    if (this.guard.size > 0)
      for (const metric of batch.metrics ?? []) this.guard.check('a metric key', metric.key);
  }

  private checkEntries(kind: 'param' | 'tag', entries: KeyValue[]): void {
    if (this.guard.size === 0) return;
    for (const entry of entries) {
      this.guard.check(`a ${kind} key`, entry.key);
      this.guard.check(
        `the value of ${kind} '${this.guard.matches(entry.key) ? '?' : entry.key}'`,
        entry.value,
      );
    }
  }

  // ---------------------------------------------------------------- artifacts

  /** The run's artifact root (cached after createRun/getRun). */
  async artifactUri(runId: string): Promise<string> {
    const cached = this.artifactUris.get(runId);
    if (cached !== undefined) return cached;
    return (await this.getRun(runId)).info.artifactUri;
  }

  /**
   * The proxy URL for a path under an artifact URI: `mlflow-artifacts:/<exp>/<run>/artifacts/p` →
   * `<tracking>/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/p`; an
   * `mlflow-artifacts://host:port/p` URI uses its own host with the tracking URI's scheme.
   */
  artifactUrl(artifactUri: string, artifactPath: string): string {
    const relative = artifactPath === '' ? '' : validateArtifactPath(artifactPath);
    const encode = (path: string) =>
      path
        .split('/')
        .filter((segment) => segment !== '')
        .map(encodeURIComponent)
        .join('/');
    const match = /^mlflow-artifacts:(\/\/[^/]+)?(\/.*)?$/.exec(artifactUri);
    if (match === null)
      throw new Error(
        `Run artifact URI '${redactUri(artifactUri)}' is not served by the tracking server (mlflow-artifacts:); start the server with --serve-artifacts`,
      );
    const rootPath = encode(match[2] ?? '');
    const full = [rootPath, encode(relative)].filter((part) => part !== '').join('/');
    let base = this.http.baseUrl;
    if (match[1] !== undefined) base = `${new URL(this.http.baseUrl).protocol}${match[1]}`;
    return `${base}/api/2.0/mlflow-artifacts/artifacts/${full}`;
  }

  /**
   * Uploads one file, streamed from disk (a multi-GB checkpoint is never held in memory). The
   * stream is reopened on every retry attempt, since a consumed stream cannot be replayed.
   * `artifactPath` is the run-relative directory; the file keeps its base name unless `fileName` is given.
   */
  async uploadArtifact(
    runId: string,
    localPath: string,
    artifactPath?: string,
    options: { fileName?: string; signal?: AbortSignal } = {},
  ): Promise<string> {
    const fileName = options.fileName ?? localPath.split(/[\\/]/).pop() ?? '';
    const target = joinArtifactPath(
      artifactPath,
      validateArtifactPath(fileName, 'artifact file name'),
    );
    if (target === '') throw new Error(`Invalid artifact target for '${localPath}'`);
    const url = this.artifactUrl(await this.artifactUri(runId), target);
    const endpoint = 'PUT /api/2.0/mlflow-artifacts/artifacts';
    await this.http.retry(
      endpoint,
      'idempotent',
      async () => {
        const { size } = await stat(localPath);
        const body = createReadStream(localPath);
        try {
          const response = await request(url, {
            method: 'PUT',
            dispatcher: this.http.dispatcher,
            headers: this.http.headers({
              'content-type': 'application/octet-stream',
              'content-length': String(size),
            }),
            body,
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          });
          const text = await response.body.text();
          if (response.statusCode < 200 || response.statusCode >= 300)
            throw apiErrorFromResponse(
              response.statusCode,
              text,
              endpoint,
              parseRetryAfter(headerValue(response.headers['retry-after'])),
            );
        } finally {
          body.destroy();
        }
      },
      options.signal,
    );
    return target;
  }

  /** Uploads every file below `localDir` (recursively, in sorted order) under `artifactPath`. */
  async uploadArtifacts(runId: string, localDir: string, artifactPath?: string): Promise<string[]> {
    const uploaded: string[] = [];
    const walk = async (dir: string, relative: string) => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      );
      for (const entry of entries) {
        const full = join(dir, entry.name);
        const info = await stat(full);
        if (info.isDirectory()) await walk(full, joinArtifactPath(relative, entry.name));
        else if (info.isFile())
          uploaded.push(
            await this.uploadArtifact(runId, full, joinArtifactPath(artifactPath, relative)),
          );
      }
    };
    await walk(localDir, '');
    return uploaded;
  }

  /**
   * Downloads one artifact file, streamed to `localPath` through a temp file renamed at the end,
   * so an interrupted download never leaves a truncated file under the real name.
   */
  async downloadArtifact(runId: string, artifactPath: string, localPath: string): Promise<void> {
    const url = this.artifactUrl(await this.artifactUri(runId), validateArtifactPath(artifactPath));
    const endpoint = 'GET /api/2.0/mlflow-artifacts/artifacts';
    await mkdir(dirname(localPath), { recursive: true });
    const temp = `${localPath}.${process.pid}.${randomUUID().slice(0, 8)}.part`;
    try {
      await this.http.retry(endpoint, 'idempotent', async () => {
        const response = await request(url, {
          method: 'GET',
          dispatcher: this.http.dispatcher,
          headers: this.http.headers(),
        });
        if (response.statusCode < 200 || response.statusCode >= 300)
          throw apiErrorFromResponse(
            response.statusCode,
            await response.body.text(),
            endpoint,
            parseRetryAfter(headerValue(response.headers['retry-after'])),
          );
        await pipeline(response.body, createWriteStream(temp));
      });
      await rename(temp, localPath);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  /** Lists a run's artifacts under `path` (run-relative); `recursive` descends into directories. */
  async listArtifacts(
    runId: string,
    path = '',
    options: { recursive?: boolean } = {},
  ): Promise<ArtifactEntry[]> {
    const relative = path === '' ? '' : validateArtifactPath(path);
    const out: ArtifactEntry[] = [];
    let pageToken: string | undefined;
    do {
      const response = await this.http.json<{
        files?: { path: string; is_dir?: boolean; file_size?: number }[];
        next_page_token?: string;
      }>({
        method: 'GET',
        path: '/api/2.0/mlflow/artifacts/list',
        query: {
          run_id: runId,
          path: relative === '' ? undefined : relative,
          page_token: pageToken,
        },
      });
      for (const file of response.files ?? []) {
        const entry: ArtifactEntry = { path: file.path, isDir: file.is_dir === true };
        if (file.file_size !== undefined) entry.fileSize = Number(file.file_size);
        out.push(entry);
      }
      pageToken = response.next_page_token === '' ? undefined : response.next_page_token;
    } while (pageToken !== undefined);
    if (options.recursive !== true) return out;
    const all: ArtifactEntry[] = [];
    for (const entry of out) {
      all.push(entry);
      if (entry.isDir) all.push(...(await this.listArtifacts(runId, entry.path, options)));
    }
    return all;
  }

  // ---------------------------------------------------------------- registry

  /** Creates the registered model, or returns the existing one (create is made idempotent). */
  async createRegisteredModel(
    name: string,
    options: { tags?: Record<string, string>; description?: string } = {},
  ): Promise<RegisteredModel> {
    try {
      await this.http.json({
        method: 'POST',
        path: '/api/2.0/mlflow/registered-models/create',
        idempotency: 'guarded',
        json: {
          name,
          tags: recordToTags(options.tags),
          ...(options.description === undefined ? {} : { description: options.description }),
        },
      });
    } catch (error) {
      if (!isErrorCode(error, 'RESOURCE_ALREADY_EXISTS')) throw error;
    }
    return this.getRegisteredModel(name);
  }

  async getRegisteredModel(name: string): Promise<RegisteredModel> {
    const response = await this.http.json<{
      registered_model: {
        name: string;
        tags?: WireTag[];
        aliases?: { alias: string; version: string }[];
      };
    }>({ method: 'GET', path: '/api/2.0/mlflow/registered-models/get', query: { name } });
    const aliases: Record<string, string> = {};
    for (const alias of response.registered_model.aliases ?? [])
      aliases[alias.alias] = String(alias.version);
    return {
      name: response.registered_model.name,
      aliases,
      tags: tagsToRecord(response.registered_model.tags),
    };
  }

  /**
   * Registers a run artifact directory as a new model version: `source` is the run's concrete
   * artifact URI + '/' + path (MLflow stores `runs:/` sources verbatim), `run_id` links the run. A
   * retry after an ambiguous failure looks for a version carrying this call's request id first.
   */
  async createModelVersion(input: CreateModelVersionInput): Promise<ModelVersion> {
    const path = validateArtifactPath(input.artifactPath);
    const source = `${(await this.artifactUri(input.runId)).replace(/\/+$/, '')}/${path}`;
    const requestId = randomUUID();
    const tags = { ...input.tags, [requestIdTag]: requestId };
    this.checkEntries('tag', recordToTags(tags));
    const endpoint = 'POST /api/2.0/mlflow/model-versions/create';
    return this.http.retry(endpoint, 'guarded', async (attempt) => {
      if (attempt > 1) {
        const previous = (await this.searchModelVersions(input.name)).find(
          (version) => version.tags[requestIdTag] === requestId,
        );
        if (previous !== undefined) return previous;
      }
      const response = await this.http.jsonOnce<{ model_version: WireModelVersion }>({
        method: 'POST',
        path: '/api/2.0/mlflow/model-versions/create',
        json: {
          name: input.name,
          source,
          run_id: input.runId,
          tags: recordToTags(tags),
          ...(input.description === undefined ? {} : { description: input.description }),
        },
      });
      return toModelVersion(response.model_version);
    });
  }

  /** All versions of a registered model (paginated). */
  async searchModelVersions(name: string): Promise<ModelVersion[]> {
    const out: ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const response = await this.http.json<{
        model_versions?: WireModelVersion[];
        next_page_token?: string;
      }>({
        method: 'GET',
        path: '/api/2.0/mlflow/model-versions/search',
        query: { filter: `name = ${quote(name)}`, max_results: 1000, page_token: pageToken },
      });
      for (const version of response.model_versions ?? []) out.push(toModelVersion(version));
      pageToken = response.next_page_token === '' ? undefined : response.next_page_token;
    } while (pageToken !== undefined);
    return out;
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    const response = await this.http.json<{ model_version: WireModelVersion }>({
      method: 'GET',
      path: '/api/2.0/mlflow/model-versions/get',
      query: { name, version },
    });
    return toModelVersion(response.model_version);
  }

  /** Points `alias` at `version` (moving it if it pointed elsewhere). */
  async setModelAlias(name: string, alias: string, version: string | number): Promise<void> {
    if (!/^[\w-]{1,255}$/.test(alias) || alias === 'latest' || /^[vV]\d+$/.test(alias))
      throw new Error(
        `Invalid model alias '${alias}': letters, digits, '_' and '-' only, not 'latest' nor 'v<number>'`,
      );
    await this.http.json({
      method: 'POST',
      path: '/api/2.0/mlflow/registered-models/alias',
      json: { name, alias, version: String(version) },
    });
  }

  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    const response = await this.http.json<{ model_version: WireModelVersion }>({
      method: 'GET',
      path: '/api/2.0/mlflow/registered-models/alias',
      query: { name, alias },
    });
    return toModelVersion(response.model_version);
  }

  /** Resolves `models:/name@alias` or `models:/name/<version>` to the version and its source. */
  async resolveModelUri(uri: string): Promise<ModelVersion> {
    const aliasMatch = /^models:\/([^@/]+)@([\w-]+)$/.exec(uri);
    if (aliasMatch !== null)
      return this.getModelVersionByAlias(aliasMatch[1] as string, aliasMatch[2] as string);
    const versionMatch = /^models:\/([^@/]+)\/(\d+)$/.exec(uri);
    if (versionMatch !== null)
      return this.getModelVersion(versionMatch[1] as string, versionMatch[2] as string);
    throw new Error(
      `Unsupported model URI '${uri}': expected models:/<name>@<alias> or models:/<name>/<version>`,
    );
  }

  async setModelVersionTag(
    name: string,
    version: string | number,
    key: string,
    value: string,
  ): Promise<void> {
    validateKey('tag', key);
    this.checkEntries('tag', [{ key, value }]);
    await this.http.json({
      method: 'POST',
      path: '/api/2.0/mlflow/model-versions/set-tag',
      json: { name, version: String(version), key, value },
    });
  }
}

/** Drops exact duplicate params (MLflow rejects duplicate keys within one batch); conflicting values are an error. */
function dedupeParams(params: KeyValue[]): KeyValue[] {
  const byKey = new Map<string, string>();
  const out: KeyValue[] = [];
  for (const param of params) {
    const previous = byKey.get(param.key);
    if (previous === undefined) {
      byKey.set(param.key, param.value);
      out.push(param);
    } else if (previous !== param.value) {
      throw new Error(
        `Param '${param.key}' given twice with different values in one batch (params are write-once)`,
      );
    }
  }
  return out;
}
