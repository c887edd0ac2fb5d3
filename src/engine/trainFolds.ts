/**
 * The training recipe: one `mentallam-train` run, in three parts over components built from the
 * config, and the only place that knows the order of things.
 *
 *   set-up    config -> run store -> model, data, folds, tokenized prompts, classifier, tracking sink
 *   per fold  fold trainer (early stopping on validation) -> evaluation (thresholds tuned on
 *             validation, the held-out fold scored once) -> fold artifacts
 *   finish    pooled out-of-fold and across-fold metrics -> summary.json
 *
 * Events go to the tracking sink, the progress display and `onEvent` alike.
 */
import { resolve } from 'node:path';

import { loadConfig, type Config } from '../config/index.js';
import { buildFolds, foldFileContent, type Dataset, type Fold } from '../data/index.js';
import { camelCaseKeys, createLogger, deriveSeed, type Logger } from '../infra/index.js';
import {
  headlineMetricKeys,
  pooledMetrics,
  pooledPerCriterionRecord,
  pooledRecord,
  summarizeAcrossFolds,
  type MetricSummary,
} from '../metrics/index.js';
import { manualSeed, setNumThreads, type Classifier } from '../native.js';
import {
  RunStore,
  type FailedFold,
  type FoldResult,
  type FoldStore,
  type RunState,
  type TrainingSummary,
} from '../run/index.js';
import { InterruptedError } from '../tracking/index.js';
import { evaluateFold, validationScore } from './evaluation.js';
import { eventStream, type TrainEvent, type TrainEventHandler } from './events.js';
import type { TokenizedExamples } from './examples.js';
import { writeFoldArtifacts } from './foldArtifacts.js';
import {
  NonFiniteLossError,
  plannedSteps,
  trainFold,
  TrainingInterruptedError,
  type FoldTrainingOptions,
} from './foldTrainer.js';
import { createProgressReporter } from './progress.js';
import { RunProgress } from './runProgress.js';
import {
  loadClassifier,
  loadDataset,
  modelDirectory,
  prepareExamples,
  resolveDevice,
} from './setup.js';
import { listenForStop, type StopRequest } from './stopRequest.js';
import { createTrackingSink, type TrackingSink } from './trackingSink.js';

export type { FailedFold, FoldResult } from '../run/index.js';

export interface TrainFoldsOptions {
  /** Hydra-style overrides, e.g. ['training.lr=3e-5', 'experiment=mentallama-redsm5']. */
  overrides?: string[];
  configDir?: string;
  /** An already resolved config (the CLI resolves it first); `overrides` are then only recorded. */
  config?: Config;
  /** Receives every run event (steps, evaluations, fold ends); the CLI draws progress from them. */
  onEvent?: TrainEventHandler;
  /** Show progress on stderr as configured by logging.progress (the CLI sets this). */
  showProgress?: boolean;
  logger?: Logger;
  /** Base directory for relative paths in the config (default: the working directory). */
  cwd?: string;
  /**
   * Continue the run in config.run_dir: finished folds are read back, an interrupted fold goes on
   * from its checkpoint, and logging continues in the same MLflow runs.
   */
  resume?: boolean;
  /** Aborting it acts like Ctrl-C: finish the step, save a checkpoint, end runs KILLED. */
  signal?: AbortSignal;
}

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

/** What the set-up builds from the config; the per-fold and finish parts only read it. */
interface Recipe {
  config: Config;
  store: RunStore;
  dataset: Dataset;
  /** The folds to train (training.folds, default all). */
  folds: Fold[];
  /** Every pair's token ids, label and criterion, in dataset.pairs order. */
  pairs: { examples: TokenizedExamples; labels: Uint8Array; criterionIds: string[] };
  classifier: Classifier;
  trainer: FoldTrainingOptions;
  sink: TrackingSink;
  emit: (event: TrainEvent) => Promise<void>;
  stop: StopRequest;
  /** The interrupted run's state when resuming, else null. */
  resumed: RunState | null;
  started: number;
}

/** A fold that finished: its result, and what pooling needs (its thresholds and test scores). */
interface FinishedFold {
  fold: Fold;
  result: FoldResult;
  thresholds: Record<string, number>;
  scores: Float32Array;
}

type FoldOutcome = FinishedFold | { failed: FailedFold };

export async function trainFolds(options: TrainFoldsOptions = {}): Promise<TrainFoldsResult> {
  const recipe = await setUp(options);
  try {
    return await recipe.sink.run(recipe.resumed?.parentRunId ?? null, async (parentRunId) => {
      const progress = await RunProgress.start(recipe.store, recipe.resumed, parentRunId);
      await recipe.emit({
        type: 'run-start',
        runDir: recipe.store.dir,
        parentRunId,
        folds: recipe.folds.map((fold) => fold.index),
      });
      const outcomes: FoldOutcome[] = [];
      for (const fold of recipe.folds) outcomes.push(await trainOneFold(recipe, progress, fold));
      return finish(recipe, parentRunId, outcomes);
    });
  } catch (error) {
    if (error instanceof TrainingInterruptedError) throw new InterruptedError(error.message);
    throw error;
  } finally {
    recipe.stop.dispose();
    recipe.classifier.dispose();
    await recipe.sink.close();
  }
}

async function setUp(options: TrainFoldsOptions): Promise<Recipe> {
  const started = Date.now();
  const cwd = resolve(options.cwd ?? process.cwd());
  const { config, overrides } = options.config
    ? { config: options.config, overrides: options.overrides ?? [] }
    : await loadConfig({
        overrides: options.overrides ?? [],
        ...(options.configDir ? { configDir: options.configDir } : {}),
      });
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const store = await new RunStore(resolve(cwd, config.run_dir)).create();
  await store.config.write(config);
  await store.overrides.write(overrides);
  const resumed = options.resume ? await store.runState.readIfExists() : null;
  if (options.resume && !resumed) {
    throw new Error(
      `--resume ${store.dir}: no run-state.json there, so there is nothing to resume`,
    );
  }

  const modelDir = await modelDirectory(config, cwd, logger);
  const dataset = await loadDataset(config, cwd, logger);
  const splits = camelCaseKeys(config.data.splits);
  const allFolds = buildFolds(dataset, splits);
  const meta = {
    ...splits,
    stratification: splits.stratify,
    datasetHash: dataset.hash,
    countOverrideReason: dataset.manifest.countOverrideReason,
  };
  for (const fold of allFolds) await store.split(fold.index).write(foldFileContent(fold, meta));
  const folds = (config.training.folds ?? allFolds.map((fold) => fold.index)).map((index) => {
    const fold = allFolds[index];
    if (!fold) {
      throw new Error(
        `training.folds names fold ${index}, but data.splits.n_splits is ${allFolds.length}`,
      );
    }
    return fold;
  });

  // Once per process, not per step: each change clears libtorch's oneDNN caches.
  if (config.training.threads > 0) setNumThreads(config.training.threads);
  const prepared = await prepareExamples(config, dataset, modelDir, cwd, logger);
  // The manifest (counts, hash, length statistics; never text) with the truncation rate that only
  // tokenization can tell.
  await store.manifest.write({
    ...dataset.manifest,
    tokenization: {
      maxLength: config.data.prompt.max_length,
      truncation: config.data.prompt.truncation,
      truncatedPairs: prepared.truncatedPairs,
      truncationRate: prepared.truncatedPairs / dataset.pairs.length,
      tokenizerHash: prepared.tokenizer.hash,
    },
  });
  const classifier = await loadClassifier(config, modelDir, prepared);
  const stop = listenForStop(logger, options.signal);
  let sink: TrackingSink;
  try {
    sink = await createTrackingSink(config, { cwd, logger, store, dataset, signal: stop.signal });
  } catch (error) {
    stop.dispose();
    classifier.dispose();
    throw error;
  }
  const progress = options.showProgress ? createProgressReporter(config.logging.progress) : null;
  return {
    config,
    store,
    dataset,
    folds,
    pairs: {
      examples: prepared.examples,
      labels: Uint8Array.from(dataset.pairs, (pair) => pair.label),
      criterionIds: dataset.pairs.map((pair) => pair.criterionId),
    },
    classifier,
    trainer: {
      ...camelCaseKeys(config.training),
      inferenceBatchSize: config.inference.batch_size,
      padTokenId: prepared.padTokenId,
      paddingSide: config.model.padding_side,
      outOfMemoryBackoff: resolveDevice(config).startsWith('cuda'),
    },
    sink,
    emit: eventStream([(event) => sink.onEvent(event), progress, options.onEvent]),
    stop,
    resumed,
    started,
  };
}

/** One fold inside its own tracking run; a NaN/Inf loss fails this fold only. */
async function trainOneFold(
  recipe: Recipe,
  progress: RunProgress,
  fold: Fold,
): Promise<FoldOutcome> {
  const previous = recipe.resumed ? progress.fold(fold.index) : undefined;
  if (previous?.status === 'done') return readFinishedFold(recipe.store.fold(fold.index), fold);
  if (recipe.stop.requested) throw new TrainingInterruptedError(fold.index, 0);
  try {
    return await recipe.sink.fold(fold.index, previous?.runId ?? null, async (runId) => {
      await progress.set(fold.index, { runId, status: 'running' });
      const finished = await fitEvaluateWrite(recipe, fold, runId, previous !== undefined);
      await progress.set(fold.index, { runId, status: 'done' });
      return finished;
    });
  } catch (error) {
    // A diverged fold ends (its tracking run FAILED, what it logged kept); the others still run,
    // so one bad fold does not cost a night's run. Anything else stops the run.
    if (!(error instanceof NonFiniteLossError)) throw error;
    const runId = progress.fold(fold.index)?.runId ?? null;
    await progress.set(fold.index, { runId, status: 'failed', error: error.message });
    await recipe.emit({
      type: 'fold-failed',
      fold: fold.index,
      step: error.step,
      message: error.message,
    });
    return { failed: { fold: fold.index, step: error.step, runId, message: error.message } };
  }
}

/** Train (or continue from a checkpoint), evaluate, write the fold's files. */
async function fitEvaluateWrite(
  recipe: Recipe,
  fold: Fold,
  runId: string | null,
  resume: boolean,
): Promise<FinishedFold> {
  const started = Date.now();
  const { config, classifier, pairs, trainer } = recipe;
  const seed = deriveSeed(config.seed, fold.index);
  // Same state as a fresh load: the adapters are re-initialised from the fold's seed (a resumed
  // fold then loads its checkpoint over them).
  await classifier.resetAdapter(seed);
  await recipe.emit({
    type: 'fold-start',
    fold: fold.index,
    totalSteps: plannedSteps(fold.train.length, trainer),
    trainPairs: fold.train.length,
    validationPairs: fold.validation.length,
    testPairs: fold.test.length,
  });
  const files = recipe.store.fold(fold.index);
  const metric = config.training.early_stopping.metric;
  const trained = await trainFold(
    classifier,
    {
      examples: pairs.examples,
      labels: pairs.labels,
      trainIndices: fold.train,
      validationIndices: fold.validation,
    },
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
      onEvent: recipe.emit,
      shouldStop: () => recipe.stop.requested,
      beforeStep: (step) => manualSeed(deriveSeed(seed, 'step', step)),
    },
  );
  const evaluation = await evaluateFold(classifier, trained.bestAdapterDir, fold, pairs, trainer);
  const result = await writeFoldArtifacts(files, {
    fold,
    dataset: recipe.dataset,
    trained,
    evaluation,
    runId,
    seconds: (Date.now() - started) / 1000,
    selectionMetric: metric,
  });
  await recipe.emit({
    type: 'fold-end',
    fold: fold.index,
    testMetrics: stripPrefix(result.testMetrics, 'test_'),
    seconds: result.seconds,
  });
  return {
    fold,
    result,
    thresholds: evaluation.thresholds.thresholds,
    scores: evaluation.testScores,
  };
}

/** Pooled and across-fold metrics of the finished folds -> summary.json. */
async function finish(
  recipe: Recipe,
  parentRunId: string | null,
  outcomes: FoldOutcome[],
): Promise<TrainFoldsResult> {
  const { dataset, store } = recipe;
  const finished = outcomes.filter((outcome): outcome is FinishedFold => 'result' in outcome);
  const failedFolds = outcomes.flatMap((outcome) => ('failed' in outcome ? [outcome.failed] : []));
  if (finished.length === 0) {
    throw new Error(`every fold failed: ${failedFolds.map((failed) => failed.message).join('; ')}`);
  }
  const pooledReport = pooledMetrics(
    finished.map(({ fold, scores, thresholds }) => ({
      labels: fold.test.map((i) => dataset.pairs[i]!.label),
      scores,
      criterionIds: fold.test.map((i) => dataset.pairs[i]!.criterionId),
      thresholds,
    })),
  );
  const pooled = pooledRecord(pooledReport);
  const acrossFolds = summarizeAcrossFolds(
    finished.map(({ result }) =>
      Object.fromEntries(
        headlineMetricKeys.map((key) => [key, result.testMetrics[key] ?? Number.NaN]),
      ),
    ),
  );
  const folds = finished.map(({ result }) => result);
  await store.summary.write({
    runDir: store.dir,
    parentRunId,
    datasetHash: dataset.hash,
    seed: recipe.config.seed,
    folds,
    failedFolds,
    pooled,
    pooledPerCriterion: pooledPerCriterionRecord(pooledReport),
    acrossFolds,
    seconds: (Date.now() - recipe.started) / 1000,
  });
  await recipe.emit({
    type: 'run-end',
    runDir: store.dir,
    summaryPath: store.summary.path,
    seconds: (Date.now() - recipe.started) / 1000,
  });
  return {
    runDir: store.dir,
    parentRunId,
    datasetHash: dataset.hash,
    folds,
    failedFolds,
    pooled,
    acrossFolds,
    summaryPath: store.summary.path,
  };
}

/** A fold a previous (interrupted) invocation finished: its result, thresholds and test scores. */
async function readFinishedFold(files: FoldStore, fold: Fold): Promise<FinishedFold> {
  const predictions = await files.predictions.read();
  if (predictions.test.length !== fold.test.length) {
    throw new Error(
      `${files.predictions.path} has ${predictions.test.length} test pairs, the fold has ${fold.test.length}: the data or splits changed since the run started`,
    );
  }
  return {
    fold,
    result: await files.result.read(),
    thresholds: (await files.thresholds.read()).perCriterion,
    scores: Float32Array.from(predictions.test, (row) => row.score),
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
