/**
 * The recipe's set-up: what a training run is made of, built once from the config. The run
 * store (config and overrides written first), the data and its folds, the tokenized prompts, the
 * classifier, the fold trainer's options, the tracking sink, the event stream and the stop
 * request; `close()` releases them.
 */
import { resolve } from 'node:path';

import type { Config } from '../config/index.js';
import { buildFolds, foldFileContent, type Dataset, type Fold } from '../data/index.js';
import { camelCaseKeys, createLogger, type Logger } from '../infra/index.js';
import { setNumThreads, type Classifier } from '../native.js';
import { RunStore, type RunState } from '../run/index.js';
import { resolveConfig, type ConfigSource } from './configSource.js';
import { eventStream, type TrainEvent, type TrainEventHandler } from './events.js';
import type { TokenizedExamples } from './examples.js';
import type { FoldTrainingOptions } from './foldTrainer.js';
import { buildFrozenCache, logFrozenCacheSavings, type FrozenRows } from './frozenCache.js';
import { createProgressReporter } from './progress.js';
import {
  loadClassifier,
  loadDataset,
  modelDirectory,
  prepareExamples,
  resolveDevice,
} from './setup.js';
import { listenForStop, type StopRequest } from './stopRequest.js';
import { createTrackingSink, type TrackingSink } from './trackingSink.js';

export interface TrainFoldsOptions extends ConfigSource {
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

/** The components of one training run; the recipe only reads them. */
export interface TrainingRun {
  config: Config;
  store: RunStore;
  dataset: Dataset;
  /** The folds to train (training.folds, default all). */
  folds: Fold[];
  /**
   * Every pair's token ids, label and criterion, in dataset.pairs order, and the frozen-bottom
   * cache when one applies (training.frozen_cache with adapters on the top layers only).
   */
  pairs: {
    examples: TokenizedExamples;
    labels: Uint8Array;
    criterionIds: string[];
    frozen: FrozenRows | null;
  };
  classifier: Classifier;
  /** training.* for the fold trainer, with what the set-up resolved (padding, device). */
  trainer: FoldTrainingOptions;
  sink: TrackingSink;
  /** Hands an event to the tracking sink, the progress display and `onEvent`, in that order. */
  emit: (event: TrainEvent) => Promise<void>;
  stop: StopRequest;
  /** The interrupted run's state when resuming, else null. */
  resumed: RunState | null;
  started: number;
  close(): Promise<void>;
}

export async function setUpTraining(options: TrainFoldsOptions): Promise<TrainingRun> {
  const started = Date.now();
  const cwd = resolve(options.cwd ?? process.cwd());
  const { config, overrides } = await resolveConfig(options);
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
  const folds = await splitFolds(config, dataset, store);
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
  let frozen: FrozenRows | null = null;
  const stop = listenForStop(logger, options.signal);
  let sink: TrackingSink;
  try {
    if (config.training.frozen_cache.enabled) {
      const built = await buildFrozenCache(classifier, prepared.examples, {
        maxMemoryBytes: config.training.frozen_cache.max_memory_mb * 2 ** 20,
        dir: store.dir,
        padTokenId: prepared.padTokenId,
        batchSize: config.inference.batch_size,
        logger,
      });
      frozen = built?.rows ?? null;
    }
    sink = await createTrackingSink(config, { cwd, logger, store, dataset, signal: stop.signal });
  } catch (error) {
    stop.dispose();
    frozen?.cache.dispose();
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
      frozen,
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
    close: async () => {
      stop.dispose();
      if (frozen) {
        logFrozenCacheSavings(frozen, logger);
        frozen.cache.dispose();
      }
      classifier.dispose();
      await sink.close();
    },
  };
}

/**
 * StratifiedGroupKFold by post, every fold's split file written (folds/fold_{i}.json); returns
 * the folds training.folds selects.
 */
async function splitFolds(config: Config, dataset: Dataset, store: RunStore): Promise<Fold[]> {
  const splits = camelCaseKeys(config.data.splits);
  const folds = buildFolds(dataset, splits);
  const meta = {
    ...splits,
    stratification: splits.stratify,
    datasetHash: dataset.hash,
    countOverrideReason: dataset.manifest.countOverrideReason,
  };
  for (const fold of folds) await store.split(fold.index).write(foldFileContent(fold, meta));
  return (config.training.folds ?? folds.map((fold) => fold.index)).map((index) => {
    const fold = folds[index];
    if (!fold) {
      throw new Error(
        `training.folds names fold ${index}, but data.splits.n_splits is ${folds.length}`,
      );
    }
    return fold;
  });
}
