import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { basename } from 'node:path';
import type { Logger } from '../infra/index.js';
import type { CreateRunInput, LogBatchInput } from './client.js';
import { InterruptedError, PrivacyGuardError } from './errors.js';
import type { Experiment, Run, RunInfo, RunStatus } from './types.js';
import { flattenParams, type Metric } from './validation.js';

/**
 * What a run context needs from the tracking side. MlflowClient implements it directly; a
 * SpoolingTracker implements it so logging survives a server outage.
 */
export interface RunTracker {
  getOrCreateExperiment(name: string): Promise<Experiment>;
  createRun(input: CreateRunInput): Promise<Run>;
  logBatch(runId: string, input: LogBatchInput): Promise<void>;
  setTag(runId: string, key: string, value: string): Promise<void>;
  updateRun(
    runId: string,
    update: { status?: RunStatus; endTime?: number },
  ): Promise<RunInfo | void>;
  uploadArtifact(runId: string, localPath: string, artifactPath?: string): Promise<unknown>;
  uploadArtifacts(runId: string, localDir: string, artifactPath?: string): Promise<unknown>;
  /** Sends whatever is held back (spool); a plain client has nothing to flush. */
  flush?(): Promise<void>;
}

/** The tag holding a failed run's error message (the `mlflow.` namespace is MLflow's own). */
export const errorTag = 'mentallam.error';

export interface RunContextOptions {
  runName: string;
  tags?: Record<string, string>;
  /** Logged as flattened dotted params. */
  params?: Record<string, unknown>;
  /** When it aborts, the run ends KILLED (the function is expected to stop soon after). */
  signal?: AbortSignal;
  logger?: Logger;
}

export interface ParentRunOptions extends RunContextOptions {
  experimentName: string;
  /** `mlflow.source.name`; default the entry script's name. */
  sourceName?: string;
  /** Directory whose git HEAD becomes `mlflow.source.git.commit`; default the CWD. */
  gitDir?: string;
  /** `mlflow.user`; default the OS user. */
  user?: string;
}

/** A run being logged to; methods forward to the tracker with this run's id. */
export class ActiveRun {
  constructor(
    readonly tracker: RunTracker,
    readonly run: Run,
    readonly experimentId: string,
    /** Tags children inherit (source, git, user). */
    readonly inheritedTags: Record<string, string>,
    readonly parentRunId?: string,
  ) {}

  get runId(): string {
    return this.run.info.runId;
  }

  get artifactUri(): string {
    return this.run.info.artifactUri;
  }

  logMetrics(metrics: Metric[]): Promise<void> {
    return this.tracker.logBatch(this.runId, { metrics });
  }

  logMetric(key: string, value: number, step?: number): Promise<void> {
    return this.logMetrics([{ key, value, ...(step === undefined ? {} : { step }) }]);
  }

  logParams(params: Record<string, unknown>): Promise<void> {
    return this.tracker.logBatch(this.runId, { params: flattenParams(params) });
  }

  setTags(tags: Record<string, string>): Promise<void> {
    return this.tracker.logBatch(this.runId, { tags });
  }

  setTag(key: string, value: string): Promise<void> {
    return this.tracker.setTag(this.runId, key, value);
  }

  logArtifact(localPath: string, artifactPath?: string): Promise<unknown> {
    return this.tracker.uploadArtifact(this.runId, localPath, artifactPath);
  }

  logArtifacts(localDir: string, artifactPath?: string): Promise<unknown> {
    return this.tracker.uploadArtifacts(this.runId, localDir, artifactPath);
  }
}

let cachedCommit: { dir: string; commit: string | undefined } | undefined;

/** HEAD of the git checkout at `dir`, or undefined outside a checkout or without git. */
export function gitCommit(dir: string = process.cwd()): string | undefined {
  if (cachedCommit?.dir === dir) return cachedCommit.commit;
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    })
      .toString()
      .trim();
    if (!/^[0-9a-f]{40,64}$/.test(commit)) commit = undefined;
  } catch {
    commit = undefined;
  }
  cachedCommit = { dir, commit };
  return commit;
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? 'unknown';
  }
}

/** The `mlflow.source.*` / `mlflow.user` tags MLflow's Python client fills through context providers. */
export function systemTags(
  options: Pick<ParentRunOptions, 'sourceName' | 'gitDir' | 'user'>,
): Record<string, string> {
  const tags: Record<string, string> = {
    'mlflow.source.name': options.sourceName ?? basename(process.argv[1] ?? 'mentallam'),
    'mlflow.source.type': 'LOCAL',
    'mlflow.user': options.user ?? currentUser(),
  };
  const commit = gitCommit(options.gitDir);
  if (commit !== undefined) tags['mlflow.source.git.commit'] = commit;
  return tags;
}

function isInterrupt(error: unknown, signal: AbortSignal | undefined): boolean {
  if (error instanceof InterruptedError) return true;
  if (error instanceof Error && error.name === 'InterruptedError') return true;
  return signal?.aborted === true;
}

async function runInContext<T>(
  tracker: RunTracker,
  experimentId: string,
  tags: Record<string, string>,
  inheritedTags: Record<string, string>,
  options: RunContextOptions,
  parentRunId: string | undefined,
  fn: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  const run = await tracker.createRun({
    experimentId,
    runName: options.runName,
    tags,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const active = new ActiveRun(tracker, run, experimentId, inheritedTags, parentRunId);
  const logger = options.logger?.child({ runId: active.runId, runName: options.runName });
  let status: RunStatus = 'FINISHED';
  try {
    if (options.params !== undefined && Object.keys(options.params).length > 0)
      await active.logParams(options.params);
    const result = await fn(active);
    if (options.signal?.aborted === true) status = 'KILLED';
    return result;
  } catch (error) {
    status = isInterrupt(error, options.signal) ? 'KILLED' : 'FAILED';
    if (status === 'FAILED') await tagError(tracker, active.runId, error, logger);
    throw error;
  } finally {
    // Ending the run must not replace the error that is propagating; a failure here is logged.
    try {
      await tracker.updateRun(active.runId, { status, endTime: Date.now() });
    } catch (endError) {
      logger?.error('Could not end the MLflow run', { status, error: (endError as Error).message });
    }
  }
}

async function tagError(
  tracker: RunTracker,
  runId: string,
  error: unknown,
  logger: Logger | undefined,
): Promise<void> {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  try {
    await tracker.setTag(runId, errorTag, message);
  } catch (tagFailure) {
    // The message itself may quote a post (refused by the guard): record that it was withheld.
    if (tagFailure instanceof PrivacyGuardError)
      await tracker
        .setTag(
          runId,
          errorTag,
          `${error instanceof Error ? error.name : 'Error'}: (message withheld by the privacy guard)`,
        )
        .catch(() => undefined);
    else
      logger?.warn('Could not tag the failed run with its error', {
        error: (tagFailure as Error).message,
      });
  }
}

/**
 * Runs `fn` inside a new top-level run of `experimentName` (created, or restored if deleted). The
 * run ends FINISHED when fn resolves, FAILED (message in the `mentallam.error` tag) when it throws,
 * KILLED when it throws an InterruptedError or `signal` aborted; then the tracker is flushed.
 */
export async function withParentRun<T>(
  tracker: RunTracker,
  options: ParentRunOptions,
  fn: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  const experiment = await tracker.getOrCreateExperiment(options.experimentName);
  const inherited = systemTags(options);
  try {
    return await runInContext(
      tracker,
      experiment.experimentId,
      { ...inherited, ...options.tags },
      inherited,
      options,
      undefined,
      fn,
    );
  } finally {
    await tracker.flush?.();
  }
}

/** Runs `fn` inside a child run of `parent` (same experiment, `mlflow.parentRunId` set at creation). */
export function withChildRun<T>(
  parent: ActiveRun,
  options: RunContextOptions,
  fn: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  return runInContext(
    parent.tracker,
    parent.experimentId,
    { ...parent.inheritedTags, ...options.tags, 'mlflow.parentRunId': parent.runId },
    parent.inheritedTags,
    options,
    parent.runId,
    fn,
  );
}
