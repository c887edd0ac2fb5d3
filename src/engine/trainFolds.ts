/**
 * One `mentallam-train` run: config -> run directory -> data, manifest, hash -> folds -> parent
 * MLflow run -> one child run per fold (train, early stop, tune thresholds on validation, score
 * the held-out fold) -> pooled out-of-fold metrics and mean ± std across folds.
 * This is the only place that knows the order of things.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import {
  configToYaml,
  flattenConfig,
  loadConfig,
  overridesToYaml,
  type Config,
} from '../config/index.js';
import { buildFolds, writeFoldFiles, type Dataset, type Fold } from '../data/index.js';
import {
  createLogger,
  deriveSeed,
  onInterrupt,
  writeFileAtomic,
  writeJsonAtomic,
  type Logger,
} from '../infra/index.js';
import {
  criterionF1Rows,
  plotConfusionMatrix,
  plotF1VsThreshold,
  plotLearningCurves,
  plotPerCriterionF1,
  plotPrCurve,
  plotRocCurve,
  pooledMetrics,
  summarizeAcrossFolds,
  thresholdSweep,
  writePlots,
  type MetricSummary,
  type PooledMetrics,
} from '../metrics/index.js';
import {
  SpoolingTracker,
  withChildRun,
  withParentRun,
  InterruptedError,
  type ActiveRun,
} from '../tracking/index.js';
import {
  loadDataset,
  modelDirectory,
  prepareExamples,
  loadClassifier,
  resolveConfiguredTracking,
  resolveDevice,
  type PreparedExamples,
} from './setup.js';
import type { TrainEventHandler } from './events.js';
import {
  NonFiniteLossError,
  predictIndices,
  plannedSteps,
  trainFold,
  TrainingInterruptedError,
  type FoldTrainingOptions,
} from './foldRunner.js';
import {
  reportTest,
  snakeCaseRecord,
  tuneOnValidation,
  validationScore,
  type FoldTestReport,
} from './evaluation.js';
import { createProgressReporter } from './progress.js';
import { runTags } from './runInfo.js';
import { continueRun, readRunState, writeRunState, type RunState } from './runState.js';
import { manualSeed, setNumThreads } from '../native.js';

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

export interface FoldResult {
  fold: number;
  runId: string | null;
  bestAdapterDir: string;
  bestStep: number;
  steps: number;
  stoppedEarly: boolean;
  thresholds: { global: number; perCriterion: Record<string, number>; fellBack: string[] };
  testMetrics: Record<string, number>;
  seconds: number;
}

/** A fold stopped by a NaN/Inf training loss; the other folds still ran. */
export interface FailedFold {
  fold: number;
  step: number;
  runId: string | null;
  message: string;
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

/** Metrics summarised across folds (mean ± std) and logged as metric_mean_* / metric_std_*. */
const summaryMetricKeys = [
  'test_f1',
  'test_precision',
  'test_recall',
  'test_macro_f1',
  'test_roc_auc',
  'test_average_precision',
  'test_mcc',
  'test_balanced_accuracy',
  'test_brier',
  'test_at_0_5_f1',
];

export async function trainFolds(options: TrainFoldsOptions = {}): Promise<TrainFoldsResult> {
  const started = Date.now();
  const cwd = resolve(options.cwd ?? process.cwd());
  const { config, overrides } = options.config
    ? { config: options.config, overrides: options.overrides ?? [] }
    : await loadConfig({
        overrides: options.overrides ?? [],
        ...(options.configDir ? { configDir: options.configDir } : {}),
      });
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const progress = options.showProgress ? createProgressReporter(config.logging.progress) : null;
  const emit: TrainEventHandler = (event) => {
    progress?.(event);
    options.onEvent?.(event);
  };

  const runDir = resolve(cwd, config.run_dir);
  await mkdir(runDir, { recursive: true });
  await writeFileAtomic(join(runDir, 'config.yaml'), configToYaml(config));
  await writeFileAtomic(join(runDir, 'overrides.yaml'), overridesToYaml(overrides));

  const modelDir = await modelDirectory(config, cwd, logger);
  const dataset = await loadDataset(config, cwd, logger);
  const folds = buildFolds(dataset, {
    nSplits: config.data.splits.n_splits,
    seed: config.data.splits.seed,
    innerValidationFraction: config.data.splits.inner_validation_fraction,
    stratify: config.data.splits.stratify,
  });
  const foldFiles = await writeFoldFiles(join(runDir, 'folds'), folds, {
    datasetHash: dataset.hash,
    seed: config.data.splits.seed,
    nSplits: config.data.splits.n_splits,
    innerValidationFraction: config.data.splits.inner_validation_fraction,
    stratification: config.data.splits.stratify,
    countOverrideReason: dataset.manifest.countOverrideReason,
  });
  const selectedFolds = (config.training.folds ?? folds.map((fold) => fold.index)).map((index) => {
    const fold = folds[index];
    if (!fold) {
      throw new Error(
        `training.folds names fold ${index}, but data.splits.n_splits is ${folds.length}`,
      );
    }
    return fold;
  });

  // Once per process, not per step: each change clears libtorch's oneDNN caches.
  if (config.training.threads > 0) setNumThreads(config.training.threads);
  const prepared = await prepareExamples(config, dataset, modelDir, cwd, logger);
  // The manifest (counts, hash, length statistics; never text) with the truncation rate that only
  // tokenization can tell.
  await writeJsonAtomic(join(runDir, 'manifest.json'), {
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

  // A first Ctrl-C finishes the current step, saves and ends runs KILLED; a second exits at once.
  let interrupted = false;
  const abort = new AbortController();
  const requestStop = () => {
    if (interrupted) return;
    interrupted = true;
    abort.abort();
    logger.warn(
      'interrupt received: finishing the current step, then stopping (again to exit now)',
    );
  };
  const stopListening = onInterrupt(requestStop);
  options.signal?.addEventListener('abort', requestStop, { once: true });
  if (options.signal?.aborted) requestStop();

  const tracking = await resolveConfiguredTracking(config, { cwd, logger });
  // Post texts must never reach MLflow: the client refuses any value containing one.
  tracking?.client.guardTexts(dataset.posts.map((post: { text: string }) => post.text));

  const tracker = tracking ? new SpoolingTracker(tracking.client, { runDir, logger }) : null;
  const previousState = options.resume ? await readRunState(runDir) : null;
  if (options.resume && !previousState) {
    throw new Error(`--resume ${runDir}: no run-state.json there, so there is nothing to resume`);
  }

  const runBody = async (parent: ActiveRun | null): Promise<TrainFoldsResult> => {
    emit({
      type: 'run-start',
      runDir,
      parentRunId: parent?.runId ?? null,
      folds: selectedFolds.map((fold) => fold.index),
    });
    if (parent) {
      await parent.logArtifact(join(runDir, 'config.yaml'));
      await parent.logArtifact(join(runDir, 'overrides.yaml'));
      await parent.logArtifact(join(runDir, 'manifest.json'));
      await parent.logArtifacts(join(runDir, 'folds'), 'folds');
    }
    const results: {
      result: FoldResult;
      thresholds: Record<string, number>;
      fold: Fold;
      scores: Float32Array;
    }[] = [];
    const failedFolds: FailedFold[] = [];
    const state: RunState = previousState ?? { parentRunId: parent?.runId ?? null, folds: {} };
    state.parentRunId = parent?.runId ?? state.parentRunId;
    await writeRunState(runDir, state);
    for (const fold of selectedFolds) {
      const foldState = state.folds[String(fold.index)];
      if (options.resume && foldState?.status === 'done') {
        results.push({ ...(await readFinishedFold(runDir, fold)), fold });
        continue;
      }
      if (interrupted) throw new TrainingInterruptedError(fold.index, 0);
      const runFold = async (child: ActiveRun | null) => {
        state.folds[String(fold.index)] = { runId: child?.runId ?? null, status: 'running' };
        await writeRunState(runDir, state);
        const outcome = await runOneFold(
          config,
          dataset,
          prepared,
          classifier,
          fold,
          runDir,
          child,
          emit,
          () => interrupted,
          Boolean(options.resume && foldState),
        );
        outcome.result.runId = child?.runId ?? null;
        await writeJsonAtomic(join(runDir, `fold_${fold.index}`, 'result.json'), outcome.result);
        state.folds[String(fold.index)] = { runId: child?.runId ?? null, status: 'done' };
        await writeRunState(runDir, state);
        return outcome;
      };
      let outcome: Awaited<ReturnType<typeof runFold>>;
      try {
        if (parent && tracking && options.resume && foldState?.runId) {
          outcome = await continueRun(
            tracker!,
            tracking.client,
            foldState.runId,
            { parentRunId: parent.runId, signal: abort.signal },
            runFold,
          );
        } else if (parent) {
          outcome = await withChildRun(
            parent,
            {
              runName: `fold_${fold.index}`,
              tags: { 'mentallam.fold': String(fold.index) },
              params: { fold: fold.index },
              signal: abort.signal,
              logger,
            },
            async (child) => {
              await child.logArtifact(foldFiles[fold.index]!, 'folds');
              return runFold(child);
            },
          );
        } else {
          outcome = await runFold(null);
        }
      } catch (error) {
        // A diverged fold ends (its MLflow run FAILED, what it logged kept); the others still
        // run, so one bad fold does not cost a night's run. Anything else stops the run.
        if (!(error instanceof NonFiniteLossError)) throw error;
        const runId = state.folds[String(fold.index)]?.runId ?? null;
        failedFolds.push({ fold: fold.index, step: error.step, runId, message: error.message });
        state.folds[String(fold.index)] = { runId, status: 'failed', error: error.message };
        await writeRunState(runDir, state);
        emit({ type: 'fold-failed', fold: fold.index, step: error.step, message: error.message });
        continue;
      }
      results.push({
        result: outcome.result,
        thresholds: outcome.report.thresholds.thresholds,
        scores: outcome.scores,
        fold,
      });
    }

    if (results.length === 0) {
      throw new Error(
        `every fold failed: ${failedFolds.map((failed) => failed.message).join('; ')}`,
      );
    }
    const pooled = pooledMetrics(
      results.map(({ fold, scores, thresholds }) => ({
        labels: fold.test.map((i) => dataset.pairs[i]!.label),
        scores,
        criterionIds: fold.test.map((i) => dataset.pairs[i]!.criterionId),
        thresholds,
      })),
    );
    const pooledFlat = pooledRecord(pooled);
    const acrossFolds = summarizeAcrossFolds(
      results.map(({ result }) =>
        Object.fromEntries(
          summaryMetricKeys.map((key) => [key, result.testMetrics[key] ?? Number.NaN]),
        ),
      ),
    );
    const summary = {
      runDir,
      parentRunId: parent?.runId ?? null,
      datasetHash: dataset.hash,
      seed: config.seed,
      folds: results.map(({ result }) => result),
      failedFolds,
      pooled: pooledFlat,
      pooledPerCriterion: Object.fromEntries(
        pooled.criteria.map((id) => [id, snakeCaseRecord(pickScalars(pooled.perCriterion[id]!))]),
      ),
      acrossFolds,
      seconds: (Date.now() - started) / 1000,
    };
    const summaryPath = join(runDir, 'summary.json');
    await writeJsonAtomic(summaryPath, summary);
    if (parent) {
      await parent.logMetrics([
        ...Object.entries(pooledFlat).map(([key, value]) => ({ key: `pooled_${key}`, value })),
        { key: 'failed_folds', value: failedFolds.length },
        ...Object.entries(acrossFolds).flatMap(([key, stats]) => [
          { key: `metric_mean_${key}`, value: stats.mean },
          { key: `metric_std_${key}`, value: stats.std },
        ]),
      ]);
      await parent.logArtifact(summaryPath);
    }
    emit({ type: 'run-end', runDir, summaryPath, seconds: (Date.now() - started) / 1000 });
    return {
      runDir,
      parentRunId: parent?.runId ?? null,
      datasetHash: dataset.hash,
      folds: results.map(({ result }) => result),
      failedFolds,
      pooled: pooledFlat,
      acrossFolds,
      summaryPath,
    };
  };

  try {
    if (!tracking || !tracker) return await runBody(null);
    if (options.resume && previousState?.parentRunId) {
      return await continueRun(
        tracker,
        tracking.client,
        previousState.parentRunId,
        { signal: abort.signal },
        runBody,
      );
    }
    return await withParentRun(
      tracker,
      {
        experimentName: config.logging.mlflow.experiment_name,
        runName: `mentallam-${config.data.name}-${config.model.name}`,
        tags: { ...config.logging.mlflow.tags, ...runTags(config, dataset, resolveDevice(config)) },
        params: flattenConfig(config),
        signal: abort.signal,
        logger,
        gitDir: cwd,
      },
      runBody,
    );
  } catch (error) {
    if (error instanceof TrainingInterruptedError) throw new InterruptedError(error.message);
    throw error;
  } finally {
    stopListening();
    classifier.dispose();
    await tracking?.close();
  }
}

async function runOneFold(
  config: Config,
  dataset: Dataset,
  prepared: PreparedExamples,
  classifier: Awaited<ReturnType<typeof loadClassifier>>,
  fold: Fold,
  runDir: string,
  child: ActiveRun | null,
  emit: TrainEventHandler,
  isInterrupted: () => boolean,
  resume: boolean,
): Promise<{ result: FoldResult; report: FoldTestReport; scores: Float32Array }> {
  const started = Date.now();
  const foldDir = join(runDir, `fold_${fold.index}`);
  const foldSeed = deriveSeed(config.seed, fold.index);
  // Same state as a fresh load: the adapters are re-initialised from the fold's seed (a resumed
  // fold then loads its checkpoint over them).
  await classifier.resetAdapter(foldSeed);
  const training = config.training;
  const options: FoldTrainingOptions = {
    lr: training.lr,
    weightDecay: training.weight_decay,
    maxEpochs: training.max_epochs,
    maxSteps: training.max_steps,
    microBatchSize: training.micro_batch_size,
    effectiveBatchSize: training.effective_batch_size,
    warmupRatio: training.warmup_ratio,
    lrSchedule: training.lr_schedule,
    maxGradNorm: training.max_grad_norm ?? 0,
    evalEverySteps: training.eval_every_steps,
    earlyStopping: {
      mode: training.early_stopping.mode,
      patience: training.early_stopping.patience,
      minDelta: training.early_stopping.min_delta,
    },
    posWeight: training.pos_weight,
    bucketWindow: training.length_bucketing ? 16 : 0,
    inferenceBatchSize: config.inference.batch_size,
    padTokenId: prepared.padTokenId,
    paddingSide: config.model.padding_side,
    outOfMemoryBackoff: resolveDevice(config).startsWith('cuda'),
  };
  const labels = Uint8Array.from(dataset.pairs, (pair) => pair.label);
  const criterionIds = dataset.pairs.map((pair) => pair.criterionId);
  const labelsOf = (indices: number[]) => indices.map((i) => labels[i]!);
  const criteriaOf = (indices: number[]) => indices.map((i) => criterionIds[i]!);

  emit({
    type: 'fold-start',
    fold: fold.index,
    totalSteps: plannedSteps(fold.train.length, options),
    trainPairs: fold.train.length,
    validationPairs: fold.validation.length,
    testPairs: fold.test.length,
  });
  const trained = await trainFold(
    classifier,
    {
      examples: prepared.examples,
      labels,
      trainIndices: fold.train,
      validationIndices: fold.validation,
    },
    options,
    foldDir,
    (indices, scores) => validationScore(labelsOf(indices), scores, training.early_stopping.metric),
    {
      fold: fold.index,
      onEvent: emit,
      seed: foldSeed,
      resume,
      beforeStep: (step) => manualSeed(deriveSeed(foldSeed, 'step', step)),
      onOutOfMemoryBackoff: child
        ? (step, metrics) =>
            child.logMetrics(
              Object.entries(metrics).map(([key, value]) => ({
                key: `oom_backoff_${key}`,
                value,
                step,
              })),
            )
        : undefined,
      shouldStop: isInterrupted,
      logStepMetrics: child
        ? (step, metrics) =>
            child.logMetrics(
              Object.entries(metrics).map(([key, value]) => ({ key: `train_${key}`, value, step })),
            )
        : undefined,
      logValidationMetrics: child
        ? (step, metrics) =>
            child.logMetrics(
              Object.entries(metrics).map(([key, value]) => ({ key: `val_${key}`, value, step })),
            )
        : undefined,
    },
  );

  // Restore the best adapter; tune thresholds on validation; score the untouched test fold once.
  await classifier.loadAdapter(trained.bestAdapterDir);
  const validationScores = await predictIndices(
    classifier,
    prepared.examples,
    fold.validation,
    options,
  );
  const thresholds = tuneOnValidation(
    labelsOf(fold.validation),
    validationScores,
    criteriaOf(fold.validation),
    10,
  );
  const testScores = await predictIndices(classifier, prepared.examples, fold.test, options);
  const report = reportTest(labelsOf(fold.test), testScores, criteriaOf(fold.test), thresholds);

  const predictions = {
    fold: fold.index,
    // Pair identity and scores only: never post text.
    test: fold.test.map((pairIndex, row) => ({
      postId: dataset.pairs[pairIndex]!.postId,
      criterionId: criterionIds[pairIndex]!,
      label: labels[pairIndex]!,
      score: testScores[row]!,
    })),
    validation: fold.validation.map((pairIndex, row) => ({
      postId: dataset.pairs[pairIndex]!.postId,
      criterionId: criterionIds[pairIndex]!,
      label: labels[pairIndex]!,
      score: validationScores[row]!,
    })),
  };
  const thresholdsFile = {
    global: thresholds.global.threshold,
    perCriterion: thresholds.thresholds,
    fellBack: thresholds.fellBack,
    minPositives: thresholds.minPositives,
    detail: thresholds.perCriterion,
    datasetHash: dataset.hash,
    fold: fold.index,
  };
  await writeJsonAtomic(join(foldDir, 'predictions.json'), predictions);
  await writeJsonAtomic(join(foldDir, 'thresholds.json'), thresholdsFile);
  await writeJsonAtomic(join(foldDir, 'metrics.json'), {
    test: report.flat,
    confusionMatrix: confusionOf(report),
    bestStep: trained.bestStep,
    bestValidation: trained.bestValue,
    steps: trained.steps,
    stoppedEarly: trained.stoppedEarly,
    validationHistory: trained.history,
  });
  await writeJsonAtomic(join(foldDir, 'curves.json'), report.curves);
  const plotsDir = join(foldDir, 'plots');
  const testLabels = labelsOf(fold.test);
  const overall = report.tuned.overall;
  await writePlots(plotsDir, {
    pr_curve: plotPrCurve(report.curves.pr, {
      prevalence: overall.prevalence,
      averagePrecision: overall.averagePrecision,
      title: `Fold ${fold.index} test: precision-recall`,
    }),
    roc_curve: plotRocCurve(report.curves.roc, {
      rocAuc: overall.rocAuc,
      title: `Fold ${fold.index} test: ROC`,
    }),
    f1_vs_threshold: plotF1VsThreshold(thresholdSweep(testLabels, testScores, { grid: 'fixed' }), {
      title: `Fold ${fold.index} test: F1 against the threshold`,
    }),
    confusion_matrix: plotConfusionMatrix(report.tuned.overall.confusion, {
      title: `Fold ${fold.index} test at the tuned thresholds`,
    }),
    per_criterion_f1: plotPerCriterionF1(criterionF1Rows(report.tuned), {
      macroF1: report.tuned.macroF1,
      title: `Fold ${fold.index} test: F1 per criterion`,
    }),
    learning_curves: plotLearningCurves(
      trained.history.map((entry) => ({
        step: entry.step,
        ...(entry.trainLoss !== undefined ? { trainLoss: entry.trainLoss } : {}),
        validationLoss: entry.metrics['loss']!,
        validationMetric: entry.value,
      })),
      { metricName: `validation ${training.early_stopping.metric}`, bestStep: trained.bestStep },
    ),
  });

  const seconds = (Date.now() - started) / 1000;
  if (child) {
    await child.logMetrics(Object.entries(report.flat).map(([key, value]) => ({ key, value })));
    await child.logMetrics([
      { key: 'fold_seconds', value: seconds },
      { key: 'best_step', value: trained.bestStep },
    ]);
    for (const name of ['predictions.json', 'thresholds.json', 'metrics.json', 'curves.json']) {
      await child.logArtifact(join(foldDir, name));
    }
    await child.logArtifacts(plotsDir, 'plots');
    await child.logArtifacts(trained.bestAdapterDir, 'best_adapter');
  }
  emit({
    type: 'fold-end',
    fold: fold.index,
    testMetrics: stripPrefix(report.flat, 'test_'),
    seconds,
  });
  return {
    result: {
      fold: fold.index,
      runId: null,
      bestAdapterDir: trained.bestAdapterDir,
      bestStep: trained.bestStep,
      steps: trained.steps,
      stoppedEarly: trained.stoppedEarly,
      thresholds: {
        global: thresholds.global.threshold,
        perCriterion: thresholds.thresholds,
        fellBack: thresholds.fellBack,
      },
      testMetrics: report.flat,
      seconds,
    },
    report,
    scores: testScores,
  };
}

function confusionOf(report: FoldTestReport): { tn: number; fp: number; fn: number; tp: number } {
  return { ...report.tuned.overall.confusion };
}

function stripPrefix(record: Record<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
}

function pickScalars(metrics: object): Record<string, number> {
  return Object.fromEntries(
    Object.entries(metrics).filter(
      (entry): entry is [string, number] => typeof entry[1] === 'number',
    ),
  );
}

function pooledRecord(pooled: PooledMetrics): Record<string, number> {
  return { ...snakeCaseRecord(pickScalars(pooled.overall)), macro_f1: pooled.macroF1 };
}

/** A fold a previous (interrupted) invocation finished: its result, thresholds and test scores. */
async function readFinishedFold(
  runDir: string,
  fold: Fold,
): Promise<{ result: FoldResult; thresholds: Record<string, number>; scores: Float32Array }> {
  const foldDir = join(runDir, `fold_${fold.index}`);
  const result = JSON.parse(await readFile(join(foldDir, 'result.json'), 'utf8')) as FoldResult;
  const thresholds = JSON.parse(await readFile(join(foldDir, 'thresholds.json'), 'utf8')) as {
    perCriterion: Record<string, number>;
  };
  const predictions = JSON.parse(await readFile(join(foldDir, 'predictions.json'), 'utf8')) as {
    test: { score: number }[];
  };
  if (predictions.test.length !== fold.test.length) {
    throw new Error(
      `${foldDir}/predictions.json has ${predictions.test.length} test pairs, the fold has ${fold.test.length}: the data or splits changed since the run started`,
    );
  }
  return {
    result,
    thresholds: thresholds.perCriterion,
    scores: Float32Array.from(predictions.test, (row) => row.score),
  };
}

/** Reads a run's summary.json (for resume and aggregate). */
export async function readSummary(runDir: string): Promise<TrainFoldsResult | null> {
  const path = join(runDir, 'summary.json');
  if (!existsSync(path)) return null;
  return JSON.parse(await readFile(path, 'utf8')) as TrainFoldsResult;
}
