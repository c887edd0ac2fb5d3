/**
 * The tracking sink: where a training run's events and files go besides the run directory. The
 * recipe always calls it; with tracking off it is the no-op sink, so the recipe never asks
 * whether tracking is on. The MLflow sink holds one parent run for the whole training and one
 * child run per fold (a resumed run continues the same runs), turns the events into metrics and
 * uploads the run store's files under their own names.
 */
import { flattenConfig, type Config } from '../config/index.js';
import type { Dataset } from '../data/index.js';
import type { Logger } from '../infra/index.js';
import { snakeCase } from '../metrics/index.js';
import type { RunStore } from '../run/index.js';
import {
  ActiveRun,
  InterruptedError,
  SpoolingTracker,
  errorTag,
  systemTags,
  withChildRun,
  withParentRun,
  type MlflowClient,
  type ResolvedTracking,
  type RunTracker,
} from '../tracking/index.js';
import type { TrainEvent } from './events.js';
import { runTags } from './runInfo.js';
import { resolveConfiguredTracking, resolveDevice } from './setup.js';

export interface TrackingSink {
  /**
   * Runs the whole training inside the sink's run: a new one, or `resumeRunId` continued. `body`
   * gets the run's id (null without tracking), which run-state.json records for a resume.
   */
  run<T>(resumeRunId: string | null, body: (runId: string | null) => Promise<T>): Promise<T>;
  /**
   * Runs one fold inside its own run (a child of the training's): a new one, one continued from
   * where it stopped, or a new one that replaces a run whose history cannot be continued.
   */
  fold<T>(
    fold: number,
    start: FoldRunStart,
    body: (runId: string | null) => Promise<T>,
  ): Promise<T>;
  /** Subscribed to the run's events, like `onEvent`; the run waits for it. */
  onEvent(event: TrainEvent): Promise<void>;
  /**
   * Ends runs another process opened and can no longer end (a rank that died) FAILED, with
   * `message` as their error; best effort.
   */
  failOpenRuns(runIds: readonly string[], message: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a fold's tracking run starts. 'continue': the fold goes on from its checkpoint, so the run's
 * history goes on too. 'replace': the fold starts again from step 0, so its old run would get a
 * second point for steps it already has; a new run takes over and the old one ends FAILED, tagged
 * with its successor (`mentallam.superseded_by`).
 */
export type FoldRunStart =
  | { kind: 'new' }
  | { kind: 'continue'; runId: string }
  | { kind: 'replace'; runId: string; reason: string };

/** The tag on a fold run that another run replaced, naming that run. */
export const supersededByTag = 'mentallam.superseded_by';
/** The tag on the replacing run, naming the run it replaced. */
export const supersedesTag = 'mentallam.supersedes';

/** Tracking off: runs the bodies, records nothing. */
export const noopSink: TrackingSink = {
  run: (_resumeRunId, body) => body(null),
  fold: (_fold, _start, body) => body(null),
  onEvent: async () => undefined,
  failOpenRuns: async () => undefined,
  close: async () => undefined,
};

export interface MlflowSinkOptions {
  tracking: ResolvedTracking;
  store: RunStore;
  config: Config;
  /** Tags on the parent run (data set, versions, device) beside logging.mlflow.tags. */
  tags: Record<string, string>;
  /** Aborting it ends the open runs KILLED. */
  signal: AbortSignal;
  logger: Logger;
  /** Where git HEAD is read for `mlflow.source.git.commit`. */
  gitDir: string;
  /**
   * Another process owns the parent run (a rank of a multi-process run in folds mode): run()
   * waits for its id and logs this process's fold runs under it, without starting or ending it.
   */
  attachTo?: () => Promise<string>;
  /** The folder of the tracking spool (default the run directory). */
  spoolDir?: string;
  /** Extra tags on each fold's run (a multi-process run: which rank trained it). */
  foldTags?: Record<string, string>;
}

/** What createTrackingSink passes on to a multi-process run's rank (see MlflowSinkOptions). */
export type SharedRunOptions = Pick<MlflowSinkOptions, 'attachTo' | 'spoolDir' | 'foldTags'>;

/** The sink logging.mlflow configures: MLflow when enabled, else the no-op sink. */
export async function createTrackingSink(
  config: Config,
  options: {
    cwd: string;
    logger: Logger;
    store: RunStore;
    dataset: Dataset;
    signal: AbortSignal;
  } & SharedRunOptions,
): Promise<TrackingSink> {
  const { cwd, logger, store, dataset, signal, attachTo, spoolDir, foldTags } = options;
  const tracking = await resolveConfiguredTracking(config, { cwd, logger });
  if (tracking === null) return noopSink;
  // Post texts must never reach MLflow: the client refuses any value containing one.
  tracking.client.guardTexts(dataset.posts.map((post) => post.text));
  const tags = runTags(config, dataset, resolveDevice(config));
  return new MlflowSink({
    tracking,
    store,
    config,
    tags,
    signal,
    logger,
    gitDir: cwd,
    ...(attachTo ? { attachTo } : {}),
    ...(spoolDir ? { spoolDir } : {}),
    ...(foldTags ? { foldTags } : {}),
  });
}

/** Logs to MLflow through a spool, so an outage delays logging instead of failing the run. */
export class MlflowSink implements TrackingSink {
  private readonly tracker: SpoolingTracker;
  private parent: ActiveRun | null = null;
  private readonly folds = new Map<number, ActiveRun>();

  constructor(private readonly options: MlflowSinkOptions) {
    this.tracker = new SpoolingTracker(options.tracking.client, {
      runDir: options.spoolDir ?? options.store.dir,
      logger: options.logger,
    });
  }

  private get client(): MlflowClient {
    return this.options.tracking.client;
  }

  run<T>(resumeRunId: string | null, body: (runId: string | null) => Promise<T>): Promise<T> {
    const { config, signal, logger } = this.options;
    const inRun = async (run: ActiveRun) => {
      this.parent = run;
      try {
        return await body(run.runId);
      } finally {
        this.parent = null;
      }
    };
    if (this.options.attachTo) return this.attached(this.options.attachTo, inRun);
    if (resumeRunId !== null) {
      return continueRun(this.tracker, this.client, resumeRunId, { signal }, inRun);
    }
    return withParentRun(
      this.tracker,
      {
        experimentName: config.logging.mlflow.experiment_name,
        runName: `mentallam-${config.data.name}-${config.model.name}`,
        tags: { ...config.logging.mlflow.tags, ...this.options.tags },
        params: flattenConfig(config),
        signal,
        logger,
        gitDir: this.options.gitDir,
      },
      inRun,
    );
  }

  /** Inside a parent run another process owns: neither started nor ended here. */
  private async attached<T>(
    parentRunId: () => Promise<string>,
    inRun: (run: ActiveRun) => Promise<T>,
  ): Promise<T> {
    const run = await this.client.getRun(await parentRunId());
    const inherited = systemTags({ gitDir: this.options.gitDir });
    try {
      return await inRun(new ActiveRun(this.tracker, run, run.info.experimentId, inherited));
    } finally {
      await this.tracker.flush?.();
    }
  }

  fold<T>(
    fold: number,
    start: FoldRunStart,
    body: (runId: string | null) => Promise<T>,
  ): Promise<T> {
    const parent = this.parent;
    if (parent === null) throw new Error('MlflowSink.fold() called outside run()');
    const { store, signal, logger } = this.options;
    const inRun = async (run: ActiveRun) => {
      this.folds.set(fold, run);
      try {
        return await body(run.runId);
      } finally {
        this.folds.delete(fold);
      }
    };
    if (start.kind === 'continue') {
      return continueRun(
        this.tracker,
        this.client,
        start.runId,
        { parentRunId: parent.runId, signal },
        inRun,
      );
    }
    return withChildRun(
      parent,
      {
        runName: `fold_${fold}`,
        tags: {
          'mentallam.fold': String(fold),
          ...this.options.foldTags,
          ...(start.kind === 'replace' ? { [supersedesTag]: start.runId } : {}),
        },
        params: { fold },
        signal,
        logger,
      },
      async (child) => {
        if (start.kind === 'replace') await this.supersede(start.runId, child.runId, start.reason);
        await child.logArtifact(store.split(fold).path, 'folds');
        return inRun(child);
      },
    );
  }

  /** Ends a fold run that a new one replaces: FAILED, with the reason and its successor. */
  private async supersede(runId: string, successor: string, reason: string): Promise<void> {
    await this.tracker.setTag(runId, supersededByTag, successor);
    await this.tracker.setTag(runId, errorTag, `superseded by ${successor}: ${reason}`);
    await this.tracker.updateRun(runId, { status: 'FAILED', endTime: Date.now() });
  }

  async onEvent(event: TrainEvent): Promise<void> {
    const { store } = this.options;
    switch (event.type) {
      case 'run-start': {
        // The parent's files are its owner's to log.
        if (this.options.attachTo) return;
        const parent = this.parent!;
        for (const file of [store.config, store.overrides, store.manifest])
          await parent.logArtifact(file.path);
        await parent.logArtifacts(store.splitsDir, 'folds');
        return;
      }
      case 'step':
        await this.foldRun(event.fold).logMetrics(
          Object.entries({
            loss: event.loss,
            lr: event.lr,
            gradNorm: event.gradNorm,
            tokensPerSecond: event.tokensPerSecond,
          }).map(([key, value]) => ({ key: `train_${snakeCase(key)}`, value, step: event.step })),
        );
        return;
      case 'evaluation':
        await this.foldRun(event.fold).logMetrics(
          Object.entries(event.metrics).map(([key, value]) => ({
            key: `val_${key}`,
            value,
            step: event.step,
          })),
        );
        return;
      case 'out-of-memory':
        await this.foldRun(event.fold).logMetrics([
          { key: 'oom_backoff_micro_batch_size', value: event.microBatchSize, step: event.step },
          {
            key: 'oom_backoff_accumulation_steps',
            value: event.accumulationSteps,
            step: event.step,
          },
        ]);
        return;
      case 'fold-end': {
        const run = this.foldRun(event.fold);
        const files = store.fold(event.fold);
        const metrics = await files.metrics.read();
        const result = await files.result.read();
        await run.logMetrics(Object.entries(metrics.test).map(([key, value]) => ({ key, value })));
        await run.logMetrics([
          { key: 'fold_seconds', value: result.seconds },
          { key: 'best_step', value: result.bestStep },
        ]);
        for (const path of files.artifactPaths) await run.logArtifact(path);
        await run.logArtifacts(files.plotsDir, 'plots');
        await run.logArtifacts(files.bestAdapterDir, 'best_adapter');
        return;
      }
      case 'run-end': {
        if (this.options.attachTo) return;
        const parent = this.parent!;
        const summary = await store.summary.read();
        await parent.logMetrics([
          ...Object.entries(summary.pooled).map(([key, value]) => ({
            key: `pooled_${key}`,
            value,
          })),
          { key: 'failed_folds', value: summary.failedFolds.length },
          ...Object.entries(summary.acrossFolds).flatMap(([key, stats]) => [
            { key: `metric_mean_${key}`, value: stats.mean },
            { key: `metric_std_${key}`, value: stats.std },
          ]),
        ]);
        await parent.logArtifact(store.summary.path);
        return;
      }
      default:
        return;
    }
  }

  async failOpenRuns(runIds: readonly string[], message: string): Promise<void> {
    for (const runId of runIds) {
      try {
        const run = await this.client.getRun(runId);
        if (run.info.status !== 'RUNNING') continue;
        await this.tracker.setTag(runId, errorTag, message);
        await this.tracker.updateRun(runId, { status: 'FAILED', endTime: Date.now() });
      } catch (error) {
        this.options.logger.warn('could not end a run another rank left open', {
          runId,
          error: (error as Error).message,
        });
      }
    }
    await this.tracker.flush?.();
  }

  close(): Promise<void> {
    return this.options.tracking.close();
  }

  private foldRun(fold: number): ActiveRun {
    const run = this.folds.get(fold);
    if (run === undefined) throw new Error(`fold ${fold}: an event outside the fold's run`);
    return run;
  }
}

/**
 * Reopens an existing MLflow run (status RUNNING again), runs `fn` in it, and ends it FINISHED,
 * FAILED (error tag) or KILLED (interrupt), like the run contexts of the tracking module.
 */
export async function continueRun<T>(
  tracker: RunTracker,
  client: MlflowClient,
  runId: string,
  options: { inheritedTags?: Record<string, string>; parentRunId?: string; signal?: AbortSignal },
  fn: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  const run = await client.getRun(runId);
  await tracker.updateRun(runId, { status: 'RUNNING' });
  const active = new ActiveRun(
    tracker,
    run,
    run.info.experimentId,
    options.inheritedTags ?? {},
    options.parentRunId,
  );
  let status: 'FINISHED' | 'FAILED' | 'KILLED' = 'FINISHED';
  try {
    const result = await fn(active);
    if (options.signal?.aborted) status = 'KILLED';
    return result;
  } catch (error) {
    status = error instanceof InterruptedError || options.signal?.aborted ? 'KILLED' : 'FAILED';
    if (status === 'FAILED') {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      await tracker.setTag(runId, errorTag, message).catch(() => undefined);
    }
    throw error;
  } finally {
    await tracker.updateRun(runId, { status, endTime: Date.now() }).catch(() => undefined);
    if (!options.parentRunId) await tracker.flush?.();
  }
}
