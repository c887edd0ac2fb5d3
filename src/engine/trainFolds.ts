/**
 * The training recipe: one `mentallam-train` run, and the only place that knows the order of
 * things. Components are built from the config by the set-up (trainingRun.ts); events go to the
 * tracking sink, the progress display and `onEvent` alike.
 *
 *   set-up    config -> run store -> data, folds, tokenized prompts, classifier, tracking sink
 *   per fold  fold trainer (early stopping on validation) -> evaluation (thresholds tuned on
 *             validation, the held-out fold scored once) -> fold artifacts
 *   finish    pooled out-of-fold and across-fold metrics -> summary.json
 */
import { rm } from 'node:fs/promises';

import type { Fold } from '../data/index.js';
import { deriveSeed } from '../infra/index.js';
import type { MetricSummary } from '../metrics/index.js';
import { manualSeed, nativeErrorCode } from '../native.js';
import {
  RunStore,
  type FailedFold,
  type FoldResult,
  type FoldStore,
  type TrainingSummary,
} from '../run/index.js';
import { InterruptedError } from '../tracking/index.js';
import { PeerFailureError } from './distributed/index.js';
import { evaluateFold, validationScore } from './evaluation.js';
import { writeFoldArtifacts } from './foldArtifacts.js';
import {
  readFinishedFold,
  runMetrics,
  type FinishedFold,
  type FoldOutcome,
} from './foldResults.js';
import {
  microBatchesPerEpoch,
  NonFiniteLossError,
  plannedSteps,
  trainFold,
  TrainingInterruptedError,
} from './foldTrainer.js';
import { RunProgress, type FoldState } from './runProgress.js';
import type { FoldRunStart } from './trackingSink.js';
import { setUpTraining, type TrainFoldsOptions, type TrainingRun } from './trainingRun.js';

export type { FailedFold, FoldResult } from '../run/index.js';
export type { TrainFoldsOptions } from './trainingRun.js';

export interface TrainFoldsResult {
  runDir: string;
  parentRunId: string | null;
  datasetHash: string;
  /** The folds that finished; pooled and across-fold metrics cover these only. */
  folds: FoldResult[];
  /** Folds stopped by a NaN/Inf loss (empty when all finished). */
  failedFolds: FailedFold[];
  pooled: Record<string, number>;
  acrossFolds: Record<string, MetricSummary>;
  summaryPath: string;
}

export async function trainFolds(options: TrainFoldsOptions = {}): Promise<TrainFoldsResult> {
  const run = await setUpTraining(options);
  const { distributed } = run;
  try {
    const result = await run.sink.run(run.resumed?.parentRunId ?? null, async (parentRunId) => {
      const progress = await RunProgress.start(
        run.store,
        run.resumed,
        parentRunId,
        distributed.runStateWrites(),
      );
      await distributed.announceParentRun(parentRunId);
      await run.emit({
        type: 'run-start',
        runDir: run.store.dir,
        parentRunId,
        folds: run.folds.map((fold) => fold.index),
      });
      const finished = (index: number) => progress.fold(index)?.status === 'done';
      const outcomes: FoldOutcome[] = [];
      for (const fold of distributed.assignFolds(run.folds, finished)) {
        const outcome = await trainOneFold(run, progress, fold);
        if (outcome) outcomes.push(outcome);
      }
      // Multi-process: rank 0 gets every rank's folds, writes the summary and shares the result.
      const all = await distributed.gatherOutcomes(outcomes, run.folds);
      return distributed.shareResult(all && (() => finish(run, parentRunId, all)));
    });
    await distributed.leave();
    return result;
  } catch (error) {
    if (isPeerFailure(error)) await endRunsLeftOpen(run, error as Error);
    await distributed.leave(error);
    if (error instanceof TrainingInterruptedError) throw new InterruptedError(error.message);
    throw error;
  } finally {
    await run.close();
  }
}

/**
 * How a resumed run goes on with a fold it did not finish: from the checkpoint a Ctrl-C saved, in
 * the same tracking run; or, when there is no checkpoint of its last state (the process was
 * killed, or the loss diverged), from step 0 in a new tracking run that replaces the old one, so
 * no step ever gets two points in one run.
 */
function foldStart(
  previous: FoldState | undefined,
  files: FoldStore,
): { start: FoldRunStart; resume: boolean; restart: string | null } {
  if (previous === undefined) return { start: { kind: 'new' }, resume: false, restart: null };
  const checkpoint = previous.status === 'interrupted' && files.checkpointState.exists();
  if (checkpoint) {
    return {
      start:
        previous.runId === null ? { kind: 'new' } : { kind: 'continue', runId: previous.runId },
      resume: true,
      restart: null,
    };
  }
  const reason =
    previous.status === 'failed'
      ? `its training loss became NaN/Inf (${previous.error ?? 'no message'})`
      : previous.status === 'interrupted'
        ? 'its checkpoint is missing'
        : 'the run that trained it ended without saving a checkpoint (killed?)';
  return {
    start:
      previous.runId === null
        ? { kind: 'new' }
        : { kind: 'replace', runId: previous.runId, reason },
    resume: false,
    restart: reason,
  };
}

/** Another rank died, hung or stopped with an error (a watchdog finding or a failed collective). */
function isPeerFailure(error: unknown): boolean {
  return error instanceof PeerFailureError || nativeErrorCode(error) === 'ERR_NATIVE_DISTRIBUTED';
}

/** The tracking runs a failed rank left open end FAILED too, with the message naming it. */
async function endRunsLeftOpen(run: TrainingRun, error: Error): Promise<void> {
  const state = await run.store.runState.readIfExists().catch(() => null);
  if (state) await run.sink.failOpenRuns(run.distributed.runsLeftOpen(state), error.message);
}

/**
 * One fold in its own tracking run; a NaN/Inf loss fails this fold only. Null on a rank that
 * helps train the fold but does not report it (ddp ranks other than 0).
 */
async function trainOneFold(
  run: TrainingRun,
  progress: RunProgress,
  fold: Fold,
): Promise<FoldOutcome | null> {
  const previous = run.resumed ? progress.fold(fold.index) : undefined;
  const files = run.store.fold(fold.index);
  if (previous?.status === 'done') return readFinishedFold(files, fold);
  if (await run.distributed.agreeToStop(run.stop.requested))
    throw new TrainingInterruptedError(fold.index, 0);
  const { start, resume, restart } = foldStart(previous, files);
  // What the earlier attempt left (a stale checkpoint, a best adapter) must not leak into this one.
  if (restart !== null && run.distributed.writesFolds) {
    await rm(files.dir, { recursive: true, force: true });
  }
  try {
    return await run.sink.fold(fold.index, start, async (runId) => {
      if (restart !== null) {
        const previousRunId = previous?.runId ?? null;
        const tracking =
          previousRunId === null
            ? ''
            : `; its MLflow run ${previousRunId} ends FAILED and fold ${fold.index} logs to a new run ${runId}`;
        run.logger.warn(`fold ${fold.index} restarts from step 0: ${restart}${tracking}`, {
          fold: fold.index,
          previousRunId,
          runId,
        });
        await run.emit({
          type: 'fold-restart',
          fold: fold.index,
          reason: restart,
          previousRunId,
          runId,
        });
      }
      await progress.set(fold.index, { runId, status: 'running' });
      const finished = await trainEvaluateWrite(run, fold, runId, resume);
      await progress.set(fold.index, { runId, status: 'done' });
      return finished;
    });
  } catch (error) {
    const runId = progress.fold(fold.index)?.runId ?? null;
    if (error instanceof TrainingInterruptedError && error.fold === fold.index && error.step > 0) {
      // A checkpoint of this step is saved: a resume continues from it, in the same run.
      await progress.set(fold.index, {
        runId,
        status: 'interrupted',
        checkpointStep: error.step,
      });
    }
    // A diverged fold ends (its tracking run FAILED, what it logged kept); the others still run,
    // so one bad fold does not cost a night's run. Anything else stops the run.
    if (!(error instanceof NonFiniteLossError)) throw error;
    if (!run.distributed.writesFolds) return null;
    await progress.set(fold.index, { runId, status: 'failed', error: error.message });
    const { step, message } = error;
    await run.emit({ type: 'fold-failed', fold: fold.index, step, message });
    return { failed: { fold: fold.index, step, runId, message } };
  }
}

/** Train (or continue from the fold's checkpoint), evaluate, write the fold's files. */
async function trainEvaluateWrite(
  run: TrainingRun,
  fold: Fold,
  runId: string | null,
  resume: boolean,
): Promise<FinishedFold | null> {
  const started = Date.now();
  const { config, classifier, model, pairs, trainer, distributed } = run;
  const seed = deriveSeed(config.seed, fold.index);
  // Same state as a fresh load: the adapters are re-initialised from the fold's seed (a resumed
  // fold then loads its checkpoint over them).
  await classifier.resetAdapter(seed);
  await run.emit({
    type: 'fold-start',
    fold: fold.index,
    totalSteps: plannedSteps(microBatchesPerEpoch(pairs.examples, fold.train, trainer), trainer),
    trainPairs: fold.train.length,
    validationPairs: fold.validation.length,
    testPairs: fold.test.length,
  });
  const files = await distributed.prepareFold(run.store, fold.index, resume);
  const metric = config.training.early_stopping.metric;
  const trained = await trainFold(
    model,
    { ...pairs, trainIndices: fold.train, validationIndices: fold.validation },
    trainer,
    files,
    (indices, scores) =>
      validationScore(
        indices.map((i) => pairs.labels[i]!),
        scores,
        metric,
      ),
    {
      fold: fold.index,
      seed,
      resume,
      onEvent: run.emit,
      shouldStop: distributed.shouldStop(run.stop),
      beforeStep: (step) => {
        distributed.checkPeers();
        manualSeed(deriveSeed(seed, 'step', step));
      },
    },
  );
  const evaluation = await evaluateFold(model, trained.bestAdapterDir, fold, pairs, trainer);
  await distributed.finishFold(files);
  if (!distributed.writesFolds) return null;
  const result = await writeFoldArtifacts(files, {
    fold,
    dataset: run.dataset,
    trained,
    evaluation,
    runId,
    seconds: (Date.now() - started) / 1000,
    selectionMetric: metric,
  });
  await run.emit({
    type: 'fold-end',
    fold: fold.index,
    testMetrics: stripPrefix(result.testMetrics, 'test_'),
    seconds: result.seconds,
  });
  const thresholds = evaluation.thresholds.thresholds;
  return { fold, result, thresholds, scores: evaluation.testScores };
}

/** The run's metrics over the finished folds -> summary.json. */
async function finish(
  run: TrainingRun,
  parentRunId: string | null,
  outcomes: FoldOutcome[],
): Promise<TrainFoldsResult> {
  const { dataset, store } = run;
  const finished = outcomes.filter((outcome): outcome is FinishedFold => 'result' in outcome);
  const failedFolds = outcomes.flatMap((outcome) => ('failed' in outcome ? [outcome.failed] : []));
  if (finished.length === 0) {
    throw new Error(`every fold failed: ${failedFolds.map((failed) => failed.message).join('; ')}`);
  }
  const metrics = runMetrics(dataset, finished);
  const folds = finished.map(({ result }) => result);
  const seconds = () => (Date.now() - run.started) / 1000;
  await store.summary.write({
    runDir: store.dir,
    parentRunId,
    datasetHash: dataset.hash,
    seed: run.config.seed,
    folds,
    failedFolds,
    ...metrics,
    seconds: seconds(),
  });
  await run.emit({
    type: 'run-end',
    runDir: store.dir,
    summaryPath: store.summary.path,
    seconds: seconds(),
  });
  return {
    runDir: store.dir,
    parentRunId,
    datasetHash: dataset.hash,
    folds,
    failedFolds,
    pooled: metrics.pooled,
    acrossFolds: metrics.acrossFolds,
    summaryPath: store.summary.path,
  };
}

function stripPrefix(record: Record<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
}

/** Reads a run's summary.json (null when the run never finished). */
export function readSummary(runDir: string): Promise<TrainingSummary | null> {
  return new RunStore(runDir).summary.readIfExists();
}
