import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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

export type SpoolEntry = SpoolOperation & {
  seq: number;
  spooledAt: number;
  /** The (redacted) tracking URI the call was meant for; `mentallam sync` names it when it differs. */
  server?: string;
  /** The run's experiment, when the run was created through this tracker. */
  experimentId?: string;
};

/** A spooled call the server refused for good: recorded in tracking-spool.done, never retried. */
export interface RejectedEntry {
  seq: number;
  /** MLflow's answer (error code and message). */
  error: string;
  /** When it was refused (ISO 8601); absent in done files written before it was recorded. */
  at?: string;
  /** The spooled call itself, when the spool file still holds it. */
  entry?: SpoolEntry;
}

/** What a run directory's spool files hold. */
export interface SpoolContents {
  spoolPath: string;
  donePath: string;
  /** Every readable entry, in sequence order. */
  entries: SpoolEntry[];
  /** Entries not yet sent (nor refused), in sequence order. */
  pending: SpoolEntry[];
  /** Sequence numbers recorded as done: sent, or refused for good. */
  done: Set<number>;
  rejected: RejectedEntry[];
}

export interface SpoolingTrackerOptions {
  /** The run directory that holds tracking-spool.jsonl and tracking-spool.done. */
  runDir: string;
  logger?: Logger;
  /**
   * While entries are pending, at most one health probe per interval decides whether to replay;
   * in between, calls go straight to the spool instead of waiting through retries again.
   */
  probeIntervalMs?: number;
  /**
   * How long createRun waits for a server that went away (run ids come from the server, so a
   * fold cannot start its run offline) before failing; default 5 minutes. Only once the server has
   * answered this tracker: one that was never reached fails after the client's retries.
   */
  createRunPatienceMs?: number;
  /** How often /health is polled during that wait; default 1 s. */
  healthPollMs?: number;
}

export interface ReplayResult {
  replayed: number;
  /** Entries the server refused for good (e.g. 400); recorded as done with their error, not retried. */
  rejected: number;
  remaining: number;
  /** Why the replay stopped with entries remaining (server away, run not found, credentials). */
  stoppedBy?: string;
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
 * Whether a spooled call that failed on replay was refused for good (record it as rejected and go
 * on) rather than failed for a reason another attempt can fix: the server away, a server that
 * does not know the run (404: another server, a wiped database), or credentials (401/403). Those
 * keep the entry and stop the replay, so nothing after it is sent out of order. A local file that
 * no longer exists cannot be uploaded by any retry. Anything unrecognised is kept too: losing a
 * call is worse than a replay that stops and says why.
 */
export function isPermanentRefusal(error: unknown, retryableStatuses: readonly number[]): boolean {
  if (isUnreachableError(error, retryableStatuses)) return false;
  if (error instanceof HttpStatusError)
    return error.status >= 400 && error.status < 500 && !retryLaterStatuses.has(error.status);
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** 4xx answers a retry can fix: credentials (401, 403, 407), a server without the run (404), throttling. */
const retryLaterStatuses = new Set([401, 403, 404, 407, 408, 429]);

/**
 * A RunTracker over an MlflowClient that never fails the caller because the server is away: when a
 * call still fails after the client's retries, it is appended (fsync'd JSON line, with a sequence
 * number) to `<runDir>/tracking-spool.jsonl`, and so is every later call until the spool has been
 * replayed, so the server sees calls in their original order. Replay happens when a probe finds the
 * server healthy again, on flush() (end of a run) and through syncSpool(). Each replayed sequence
 * number is appended (fsync'd) to tracking-spool.done, and metrics already present on the server
 * with the same (key, step, timestamp) are skipped, so a replay interrupted at any point and
 * replayed again logs every value exactly once. An entry is only marked done when the server
 * accepted it or refused it for good (isPermanentRefusal); any other failure stops the replay and
 * keeps it.
 *
 * Creating experiments and runs needs the server (a run id cannot be invented offline): those
 * calls go to the client. A run creation that finds the server gone after it had answered waits
 * for it (createRunPatienceMs) instead of failing the training at a fold boundary.
 */
export class SpoolingTracker implements RunTracker {
  readonly spoolPath: string;
  readonly donePath: string;
  private readonly probeIntervalMs: number;
  private readonly logger: Logger | undefined;
  private readonly pending: SpoolEntry[] = [];
  /** Experiment of each run created through this tracker, recorded with its spooled calls. */
  private readonly experimentOf = new Map<string, string>();
  private readonly createRunPatienceMs: number;
  private readonly healthPollMs: number;
  /** Whether the server has answered this tracker once (then an outage is worth waiting for). */
  private serverSeen = false;
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
    this.createRunPatienceMs = options.createRunPatienceMs ?? 300_000;
    this.healthPollMs = options.healthPollMs ?? 1_000;
    this.logger = options.logger;
    this.load();
  }

  /** Entries spooled and not yet replayed. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** The entries spooled and not yet replayed, oldest first. */
  pendingEntries(): readonly SpoolEntry[] {
    return this.pending;
  }

  async getOrCreateExperiment(name: string): Promise<Experiment> {
    const experiment = await this.client.getOrCreateExperiment(name);
    this.serverSeen = true;
    return experiment;
  }

  /**
   * Creates a run; when the server that answered before is unreachable, waits for it (polling
   * /health, up to createRunPatienceMs, or until `input.signal` aborts) and tries again with the
   * same request id, looking first for a run an earlier attempt may have created.
   */
  async createRun(input: CreateRunInput): Promise<Run> {
    const request: CreateRunInput = { ...input, requestId: input.requestId ?? randomUUID() };
    const deadline = Date.now() + this.createRunPatienceMs;
    let waited = false;
    for (;;) {
      try {
        const found = waited
          ? await this.client.findRunByRequestId(input.experimentId, request.requestId as string)
          : undefined;
        const run = found ?? (await this.client.createRun(request));
        this.serverSeen = true;
        this.experimentOf.set(run.info.runId, run.info.experimentId);
        if (waited)
          this.logger?.info('MLflow answers again: run created', {
            runName: input.runName,
            runId: run.info.runId,
          });
        return run;
      } catch (error) {
        const unreachable = isUnreachableError(error, this.client.retryPolicy.retryableStatuses);
        if (!this.serverSeen || !unreachable) throw error;
        if (Date.now() >= deadline || input.signal?.aborted === true) {
          if (!waited) throw error;
          throw new Error(
            `MLflow at ${this.client.trackingUri} did not answer for ${Math.round(this.createRunPatienceMs / 1000)} s: ` +
              `could not create run '${input.runName ?? ''}' (${(error as Error).message})`,
            { cause: error },
          );
        }
        if (!waited)
          this.logger?.warn(
            'MLflow unreachable: waiting for it to create the run (training pauses)',
            {
              runName: input.runName,
              patienceSeconds: Math.round(this.createRunPatienceMs / 1000),
              error: (error as Error).message,
            },
          );
        waited = true;
        await this.waitForServer(deadline, input.signal);
      }
    }
  }

  private async waitForServer(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    while (Date.now() < deadline && signal?.aborted !== true) {
      if (await this.client.health()) return;
      await sleep(Math.min(this.healthPollMs, Math.max(0, deadline - Date.now())), signal);
    }
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
      const result = await this.replayPending();
      if (this.pending.length > 0)
        this.logger?.warn('Tracking calls remain spooled', {
          pending: this.pending.length,
          reason: result.stoppedBy,
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
        this.serverSeen = true;
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
        const message = error instanceof Error ? error.message : String(error);
        if (!isPermanentRefusal(error, this.client.retryPolicy.retryableStatuses)) {
          result.stoppedBy = `${entry.op} #${entry.seq} for run ${entry.runId}: ${message}`;
          break;
        }
        // A refused entry will be refused forever; record it instead of blocking everything after it.
        rejection = message;
        this.logger?.error(
          'MLflow refused a spooled tracking call for good; recorded as rejected',
          {
            seq: entry.seq,
            op: entry.op,
            error: rejection,
            done: this.donePath,
          },
        );
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
    const experimentId = this.experimentOf.get(operation.runId);
    const entry: SpoolEntry = {
      seq: this.nextSeq++,
      spooledAt: Date.now(),
      server: this.client.trackingUri,
      ...(experimentId === undefined ? {} : { experimentId }),
      ...operation,
    };
    await appendLineSynced(this.spoolPath, JSON.stringify(entry));
    this.pending.push(entry);
  }

  private async markDone(seq: number, rejection: string | undefined): Promise<void> {
    await appendLineSynced(
      this.donePath,
      rejection === undefined
        ? String(seq)
        : JSON.stringify({ seq, rejected: rejection, at: new Date().toISOString() }),
    );
  }

  /** Reads an existing spool (a previous process's, or before `mentallam sync`). */
  private load(): void {
    const contents = readSpool(dirname(this.spoolPath));
    for (const entry of contents.entries) this.nextSeq = Math.max(this.nextSeq, entry.seq + 1);
    this.pending.push(...contents.pending);
  }
}

/** Reads `<runDir>/tracking-spool.jsonl` and `tracking-spool.done`; absent files read as empty. */
export function readSpool(runDir: string): SpoolContents {
  const spoolPath = join(runDir, spoolFileName);
  const donePath = join(runDir, spoolDoneFileName);
  const done = new Set<number>();
  const rejectedBySeq = new Map<number, RejectedEntry>();
  if (existsSync(donePath)) {
    for (const line of readFileSync(donePath, 'utf8').split('\n')) {
      const text = line.trim();
      if (text === '') continue;
      if (!text.startsWith('{')) {
        if (Number.isInteger(Number(text))) done.add(Number(text));
        continue;
      }
      const record = safeParse(text) as
        { seq?: unknown; rejected?: unknown; at?: unknown } | undefined;
      if (typeof record?.seq !== 'number' || !Number.isInteger(record.seq)) continue;
      done.add(record.seq);
      if (typeof record.rejected === 'string')
        rejectedBySeq.set(record.seq, {
          seq: record.seq,
          error: record.rejected,
          ...(typeof record.at === 'string' ? { at: record.at } : {}),
        });
    }
  }
  const entries: SpoolEntry[] = [];
  if (existsSync(spoolPath)) {
    for (const line of readFileSync(spoolPath, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      // A torn last line (crash during append) was never acknowledged to the caller: skip it.
      const entry = safeParse(line) as SpoolEntry | undefined;
      if (entry === undefined || typeof entry.seq !== 'number') continue;
      entries.push(entry);
    }
  }
  entries.sort((a, b) => a.seq - b.seq);
  for (const entry of entries) {
    const rejected = rejectedBySeq.get(entry.seq);
    if (rejected !== undefined) rejected.entry = entry;
  }
  return {
    spoolPath,
    donePath,
    entries,
    pending: entries.filter((entry) => !done.has(entry.seq)),
    done,
    rejected: [...rejectedBySeq.values()],
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolvePromise) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolvePromise();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
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
