import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpStatusError, isNetworkError, type Logger } from '../infra/index.js';
import type { CreateRunInput, LogBatchInput, MlflowClient } from './client.js';
import type { RunTracker } from './runContext.js';
import type { Experiment, Run, RunStatus } from './types.js';
import {
  decodeMetricValue,
  encodeMetricValue,
  flattenParams,
  normalizeMetric,
  type KeyValue,
  type LoggedMetric,
} from './validation.js';

export const spoolFileName = 'tracking-spool.jsonl';
export const spoolDoneFileName = 'tracking-spool.done';

/** One held-back call. Metrics carry their timestamps from the moment they were logged. */
export type SpoolOperation =
  | {
      op: 'logBatch';
      runId: string;
      metrics: { key: string; value: number | string; timestamp: number; step: number }[];
      params: KeyValue[];
      tags: KeyValue[];
    }
  | { op: 'setTag'; runId: string; key: string; value: string }
  | { op: 'updateRun'; runId: string; status?: RunStatus; endTime?: number }
  | { op: 'uploadArtifact'; runId: string; localPath: string; artifactPath?: string }
  | { op: 'uploadArtifacts'; runId: string; localDir: string; artifactPath?: string };

export type SpoolEntry = SpoolOperation & { seq: number; spooledAt: number };

export interface SpoolingTrackerOptions {
  /** The run directory that holds tracking-spool.jsonl and tracking-spool.done. */
  runDir: string;
  logger?: Logger;
  /**
   * While entries are pending, at most one health probe per interval decides whether to replay;
   * in between, calls go straight to the spool instead of waiting through retries again.
   */
  probeIntervalMs?: number;
}

export interface ReplayResult {
  replayed: number;
  /** Entries the server refused for good (e.g. 400); recorded as done with their error, not retried. */
  rejected: number;
  remaining: number;
}

/**
 * Whether an error means "the server did not answer usefully after all retries" (spool it), as
 * opposed to a request MLflow refused (a bug to surface).
 */
export function isUnreachableError(error: unknown, retryableStatuses: readonly number[]): boolean {
  if (error instanceof HttpStatusError) return retryableStatuses.includes(error.status);
  return isNetworkError(error);
}

/**
 * A RunTracker over an MlflowClient that never fails the caller because the server is away: when a
 * call still fails after the client's retries, it is appended (fsync'd JSON line, with a sequence
 * number) to `<runDir>/tracking-spool.jsonl`, and so is every later call until the spool has been
 * replayed, so the server sees calls in their original order. Replay happens when a probe finds the
 * server healthy again, on flush() (end of a run) and through syncSpool(). Each replayed sequence
 * number is appended (fsync'd) to tracking-spool.done, and metrics already present on the server
 * with the same (key, step, timestamp) are skipped, so a replay interrupted at any point and
 * replayed again logs every value exactly once.
 *
 * Creating experiments and runs needs the server (a run id cannot be invented offline): those
 * calls go to the client and fail after its retries.
 */
export class SpoolingTracker implements RunTracker {
  readonly spoolPath: string;
  readonly donePath: string;
  private readonly probeIntervalMs: number;
  private readonly logger: Logger | undefined;
  private readonly pending: SpoolEntry[] = [];
  private readonly done = new Set<number>();
  private nextSeq = 1;
  private lastProbe = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly client: MlflowClient,
    options: SpoolingTrackerOptions,
  ) {
    this.spoolPath = join(options.runDir, spoolFileName);
    this.donePath = join(options.runDir, spoolDoneFileName);
    this.probeIntervalMs = options.probeIntervalMs ?? 5_000;
    this.logger = options.logger;
    this.load();
  }

  /** Entries spooled and not yet replayed. */
  get pendingCount(): number {
    return this.pending.length;
  }

  getOrCreateExperiment(name: string): Promise<Experiment> {
    return this.client.getOrCreateExperiment(name);
  }

  createRun(input: CreateRunInput): Promise<Run> {
    return this.client.createRun(input);
  }

  async logBatch(runId: string, input: LogBatchInput): Promise<void> {
    // Timestamps are fixed now, not at replay, so the server shows when a value was really logged.
    const now = Date.now();
    const params = Array.isArray(input.params)
      ? input.params
      : input.params === undefined
        ? []
        : Object.entries(input.params).map(([key, value]) => ({
            key,
            value: typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value)),
          }));
    const tags = Array.isArray(input.tags)
      ? input.tags
      : Object.entries(input.tags ?? {}).map(([key, value]) => ({ key, value: String(value) }));
    const metrics = (input.metrics ?? []).map((metric) => {
      const normalized = normalizeMetric(metric, now);
      return { ...normalized, value: encodeMetricValue(normalized.value) };
    });
    // The guard and key checks run before spooling: refused values must never reach the spool file either.
    this.client.guardCheckBatch({ metrics: input.metrics ?? [], params, tags });
    return this.submit({ op: 'logBatch', runId, metrics, params, tags });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    this.client.guardCheckBatch({ tags: [{ key, value }] });
    return this.submit({ op: 'setTag', runId, key, value });
  }

  updateRun(runId: string, update: { status?: RunStatus; endTime?: number }): Promise<void> {
    return this.submit({ op: 'updateRun', runId, ...update });
  }

  uploadArtifact(runId: string, localPath: string, artifactPath?: string): Promise<void> {
    return this.submit({
      op: 'uploadArtifact',
      runId,
      localPath,
      ...(artifactPath === undefined ? {} : { artifactPath }),
    });
  }

  uploadArtifacts(runId: string, localDir: string, artifactPath?: string): Promise<void> {
    return this.submit({
      op: 'uploadArtifacts',
      runId,
      localDir,
      ...(artifactPath === undefined ? {} : { artifactPath }),
    });
  }

  /** Logs a nested config as flattened params. */
  logConfigParams(runId: string, config: unknown): Promise<void> {
    return this.logBatch(runId, { params: flattenParams(config) });
  }

  /**
   * Replays everything pending now (no probe interval). Leaves what could not be sent in the spool
   * and logs how to send it later.
   */
  flush(): Promise<void> {
    return this.serialize(async () => {
      if (this.pending.length === 0) return;
      await this.replayPending();
      if (this.pending.length > 0)
        this.logger?.warn('MLflow unreachable: tracking calls remain spooled', {
          pending: this.pending.length,
          spool: this.spoolPath,
          hint: 'run `mentallam sync <run dir>` when the server is back',
        });
    });
  }

  /** Replays pending entries in order; used by flush() and syncSpool(). */
  replay(): Promise<ReplayResult> {
    return this.serialize(() => this.replayPending());
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private submit(operation: SpoolOperation): Promise<void> {
    return this.serialize(async () => {
      if (this.pending.length > 0 && Date.now() - this.lastProbe >= this.probeIntervalMs) {
        this.lastProbe = Date.now();
        if (await this.client.health()) await this.replayPending();
      }
      if (this.pending.length > 0) {
        await this.append(operation);
        return;
      }
      try {
        await this.execute(operation, undefined);
      } catch (error) {
        if (!isUnreachableError(error, this.client.retryPolicy.retryableStatuses)) throw error;
        this.logger?.warn('MLflow unreachable after retries: spooling tracking calls', {
          op: operation.op,
          error: (error as Error).message,
          spool: this.spoolPath,
        });
        this.lastProbe = Date.now();
        await this.append(operation);
      }
    });
  }

  private async replayPending(): Promise<ReplayResult> {
    const result: ReplayResult = { replayed: 0, rejected: 0, remaining: this.pending.length };
    if (this.pending.length === 0) return result;
    // Per replay session: (key, step, timestamp) already on the server, per run and metric key.
    const seen = new Map<string, Set<string>>();
    while (this.pending.length > 0) {
      const entry = this.pending[0] as SpoolEntry;
      let rejection: string | undefined;
      try {
        await this.execute(entry, seen);
      } catch (error) {
        if (isUnreachableError(error, this.client.retryPolicy.retryableStatuses)) break;
        // A refused entry will be refused forever; record it instead of blocking everything after it.
        rejection = (error as Error).message;
        this.logger?.error('MLflow refused a spooled tracking call; skipping it', {
          seq: entry.seq,
          op: entry.op,
          error: rejection,
        });
      }
      await this.markDone(entry.seq, rejection);
      this.pending.shift();
      if (rejection === undefined) result.replayed++;
      else result.rejected++;
    }
    result.remaining = this.pending.length;
    if (result.replayed + result.rejected > 0)
      this.logger?.info('Replayed spooled tracking calls', { ...result });
    return result;
  }

  private async execute(
    operation: SpoolOperation,
    seen: Map<string, Set<string>> | undefined,
  ): Promise<void> {
    switch (operation.op) {
      case 'logBatch': {
        let metrics: LoggedMetric[] = operation.metrics.map((metric) => ({
          ...metric,
          value: decodeMetricValue(metric.value),
        }));
        if (seen !== undefined) metrics = await this.withoutLogged(operation.runId, metrics, seen);
        if (metrics.length + operation.params.length + operation.tags.length === 0) return;
        await this.client.logBatch(operation.runId, {
          metrics,
          params: operation.params,
          tags: operation.tags,
        });
        if (seen !== undefined)
          for (const metric of metrics)
            seen
              .get(`${operation.runId}\0${metric.key}`)
              ?.add(`${metric.step}:${metric.timestamp}`);
        return;
      }
      case 'setTag':
        await this.client.setTag(operation.runId, operation.key, operation.value);
        return;
      case 'updateRun':
        await this.client.updateRun(operation.runId, {
          ...(operation.status === undefined ? {} : { status: operation.status }),
          ...(operation.endTime === undefined ? {} : { endTime: operation.endTime }),
        });
        return;
      case 'uploadArtifact':
        await this.client.uploadArtifact(
          operation.runId,
          operation.localPath,
          operation.artifactPath,
        );
        return;
      case 'uploadArtifacts':
        await this.client.uploadArtifacts(
          operation.runId,
          operation.localDir,
          operation.artifactPath,
        );
        return;
    }
  }

  /**
   * Drops metrics the server already has with the same (key, step, timestamp): a request that
   * failed after the server committed it, or a replay cut short before its done mark.
   */
  private async withoutLogged(
    runId: string,
    metrics: LoggedMetric[],
    seen: Map<string, Set<string>>,
  ): Promise<LoggedMetric[]> {
    for (const key of new Set(metrics.map((metric) => metric.key))) {
      const cacheKey = `${runId}\0${key}`;
      if (seen.has(cacheKey)) continue;
      const history = await this.client.getMetricHistory(runId, key);
      seen.set(cacheKey, new Set(history.map((metric) => `${metric.step}:${metric.timestamp}`)));
    }
    return metrics.filter(
      (metric) => !seen.get(`${runId}\0${metric.key}`)?.has(`${metric.step}:${metric.timestamp}`),
    );
  }

  private async append(operation: SpoolOperation): Promise<void> {
    const entry: SpoolEntry = { seq: this.nextSeq++, spooledAt: Date.now(), ...operation };
    await appendLineSynced(this.spoolPath, JSON.stringify(entry));
    this.pending.push(entry);
  }

  private async markDone(seq: number, rejection: string | undefined): Promise<void> {
    await appendLineSynced(
      this.donePath,
      rejection === undefined ? String(seq) : JSON.stringify({ seq, rejected: rejection }),
    );
    this.done.add(seq);
  }

  /** Reads an existing spool (a previous process's, or before `mentallam sync`). */
  private load(): void {
    if (existsSync(this.donePath)) {
      for (const line of readFileSync(this.donePath, 'utf8').split('\n')) {
        const text = line.trim();
        if (text === '') continue;
        const seq = text.startsWith('{')
          ? (safeParse(text) as { seq?: number } | undefined)?.seq
          : Number(text);
        if (typeof seq === 'number' && Number.isInteger(seq)) this.done.add(seq);
      }
    }
    if (!existsSync(this.spoolPath)) return;
    const lines = readFileSync(this.spoolPath, 'utf8').split('\n');
    for (const line of lines) {
      if (line.trim() === '') continue;
      // A torn last line (crash during append) was never acknowledged to the caller: skip it.
      const entry = safeParse(line) as SpoolEntry | undefined;
      if (entry === undefined || typeof entry.seq !== 'number') continue;
      this.nextSeq = Math.max(this.nextSeq, entry.seq + 1);
      if (!this.done.has(entry.seq)) this.pending.push(entry);
    }
    this.pending.sort((a, b) => a.seq - b.seq);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Appends one line and fsyncs before returning, so an acknowledged entry survives a crash. */
async function appendLineSynced(path: string, line: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  const handle = await open(path, 'a');
  try {
    // A previous crash may have left a torn line without a newline; start on a fresh line.
    const { size } = await handle.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      const read = await open(path, 'r');
      try {
        await read.read(last, 0, 1, size - 1);
      } finally {
        await read.close();
      }
      if (last[0] !== 0x0a) prefix = '\n';
    }
    await handle.write(`${prefix}${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replays `<runDir>/tracking-spool.jsonl` into MLflow (what `mentallam sync <run dir>` runs).
 * Safe to run any number of times: replayed entries are recorded in tracking-spool.done.
 */
export async function syncSpool(
  runDir: string,
  client: MlflowClient,
  options: { logger?: Logger } = {},
): Promise<ReplayResult> {
  const tracker = new SpoolingTracker(client, {
    runDir,
    probeIntervalMs: 0,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  return tracker.replay();
}
