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
import type { Fold } from '../data/index.js';
import { deriveSeed } from '../infra/index.js';
import type { MetricSummary } from '../metrics/index.js';
import { manualSeed } from '../native.js';
import { RunStore, type FailedFold, type FoldResult, type TrainingSummary } from '../run/index.js';
import { InterruptedError } from '../tracking/index.js';
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
import { RunProgress } from './runProgress.js';
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
  try {
    return await run.sink.run(run.resumed?.parentRunId ?? null, async (parentRunId) => {
      const progress = await RunProgress.start(run.store, run.resumed, parentRunId);
      await run.emit({
        type: 'run-start',
        runDir: run.store.dir,
        parentRunId,
        folds: run.folds.map((fold) => fold.index),
      });
      const outcomes: FoldOutcome[] = [];
      for (const fold of run.folds) outcomes.push(await trainOneFold(run, progress, fold));
      return finish(run, parentRunId, outcomes);
    });
  } catch (error) {
    if (error instanceof TrainingInterruptedError) throw new InterruptedError(error.message);
    throw error;
  } finally {
    await run.close();
  }
}

/** One fold in its own tracking run; a NaN/Inf loss fails this fold only. */
async function trainOneFold(
  run: TrainingRun,
  progress: RunProgress,
  fold: Fold,
): Promise<FoldOutcome> {
  const previous = run.resumed ? progress.fold(fold.index) : undefined;
  if (previous?.status === 'done') return readFinishedFold(run.store.fold(fold.index), fold);
  if (run.stop.requested) throw new TrainingInterruptedError(fold.index, 0);
  try {
    return await run.sink.fold(fold.index, previous?.runId ?? null, async (runId) => {
      await progress.set(fold.index, { runId, status: 'running' });
      const finished = await trainEvaluateWrite(run, fold, runId, previous !== undefined);
      await progress.set(fold.index, { runId, status: 'done' });
      return finished;
    });
  } catch (error) {
    // A diverged fold ends (its tracking run FAILED, what it logged kept); the others still run,
    // so one bad fold does not cost a night's run. Anything else stops the run.
    if (!(error instanceof NonFiniteLossError)) throw error;
    const runId = progress.fold(fold.index)?.runId ?? null;
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
): Promise<FinishedFold> {
  const started = Date.now();
  const { config, classifier, pairs, trainer } = run;
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
  const files = run.store.fold(fold.index);
  const metric = config.training.early_stopping.metric;
  const trained = await trainFold(
    classifier,
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
      shouldStop: () => run.stop.requested,
      beforeStep: (step) => manualSeed(deriveSeed(seed, 'step', step)),
    },
  );
  const evaluation = await evaluateFold(classifier, trained.bestAdapterDir, fold, pairs, trainer);
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
