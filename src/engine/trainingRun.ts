/**
 * The recipe's set-up: what a training run is made of, built once from the config. The run
 * store (config and overrides written first), the data and its folds, the tokenized prompts, the
 * classifier, the fold trainer's options, the tracking sink, the event stream and the stop
 * request; `close()` releases them.
 */
import { resolve } from 'node:path';

import { flattenConfig, validateConfig, type Config } from '../config/index.js';
import { buildFolds, foldFileContent, type Dataset, type Fold } from '../data/index.js';
import { camelCaseKeys, createLogger, type Logger } from '../infra/index.js';
import { setNumThreads, type Classifier } from '../native.js';
import {
  claimNewRun,
  claimRunForResume,
  RunStore,
  type RunClaim,
  type RunState,
} from '../run/index.js';
import { resolveConfig, type ConfigSource } from './configSource.js';
import { eventStream, type TrainEvent, type TrainEventHandler } from './events.js';
import type { TokenizedExamples } from './examples.js';
import { joinRanks, type DistributedStrategy } from './distributed/index.js';
import type { FoldModel, FoldTrainingOptions } from './foldTrainer.js';
import {
  buildFrozenCache,
  frozenCacheFile,
  logFrozenCacheSavings,
  type FrozenRows,
} from './frozenCache.js';
import { createProgressReporter } from './progress.js';
import {
  loadClassifier,
  loadDataset,
  modelDirectory,
  prepareExamples,
  resolveDevice,
} from './setup.js';
import { listenForStop, type StopRequest } from './stopRequest.js';
import { createTrackingSink, noopSink, type TrackingSink } from './trackingSink.js';

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
  /** What the fold trainer and the evaluation drive: the classifier, or its data-parallel wrapper. */
  model: FoldModel;
  /** training.* for the fold trainer, with what the set-up resolved (padding, device). */
  trainer: FoldTrainingOptions;
  sink: TrackingSink;
  /** Hands an event to the tracking sink, the progress display and `onEvent`, in that order. */
  emit: (event: TrainEvent) => Promise<void>;
  stop: StopRequest;
  logger: Logger;
  /** The interrupted run's state when resuming (rank 0's), else null. */
  resumed: RunState | null;
  /** How the run is spread over processes (one, or this rank's share). */
  distributed: DistributedStrategy;
  started: number;
  close(): Promise<void>;
}

export async function setUpTraining(options: TrainFoldsOptions): Promise<TrainingRun> {
  const started = Date.now();
  const cwd = resolve(options.cwd ?? process.cwd());
  const resolved = await resolveConfig(options);
  const logger = options.logger ?? createLogger({ level: resolved.config.logging.level });
  // Several ranks (torchrun, srun, --nproc): this process's rank; one process: the plain strategy.
  const distributed = await joinRanks(resolved.config, {
    env: options.env ?? process.env,
    logger,
    device: resolveDevice(resolved.config),
  });
  let claim: RunClaim | null = null;
  try {
    // The run directory is this run's alone from here on: rank 0 creates it exclusively (a name
    // made by the clock gets a suffix when taken) or, for a resume, locks it; the other ranks use
    // the one rank 0 claimed (its run_dir reaches them with its config).
    let config = resolved.config;
    if (distributed.rank === 0) {
      claim = options.resume
        ? await claimRunForResume(resolve(cwd, config.run_dir))
        : await claimNewRun(resolve(cwd, config.run_dir), {
            suffixIfTaken: resolved.clockKeys.includes('run_dir'),
          });
      if (claim.suffix !== '') {
        config = validateConfig({ ...config, run_dir: `${config.run_dir}${claim.suffix}` });
        logger.info('run directory name taken: using a suffix', { runDir: claim.store.dir });
      }
    }
    return await setUpRank(options, {
      config,
      overrides: resolved.overrides,
      cwd,
      logger,
      distributed,
      claim,
      started,
    });
  } catch (error) {
    // Nothing has run yet: a new run leaves nothing behind, a resumed one keeps everything.
    await claim?.discard();
    await distributed.leave(error);
    throw error;
  }
}

async function setUpRank(
  options: TrainFoldsOptions,
  context: {
    config: Config;
    overrides: string[];
    cwd: string;
    logger: Logger;
    distributed: DistributedStrategy;
    /** Rank 0's claim on the run directory; null on the other ranks. */
    claim: RunClaim | null;
    started: number;
  },
): Promise<TrainingRun> {
  const { cwd, logger, distributed, claim, started, overrides } = context;
  const config = await agreeOnConfig(context.config, distributed);
  const store = claim?.store ?? new RunStore(resolve(cwd, config.run_dir));
  await distributed.rankZeroFirst('run directory', async () => {
    if (claim === null) await store.create();
    if (distributed.writesRun) {
      await store.config.write(config);
      await store.overrides.write(overrides);
    }
  });
  const resumed = options.resume
    ? await distributed.fromRankZero('run state', () => store.runState.readIfExists())
    : null;
  if (options.resume && !resumed) {
    throw new Error(
      `--resume ${store.dir}: no run-state.json there, so there is nothing to resume`,
    );
  }

  // Rank 0 first: the tiny model, the synthetic data and the token cache are created on first use.
  const { modelDir, dataset, folds, prepared } = await distributed.rankZeroFirst(
    'data and model set-up',
    async () => {
      const modelDir = await modelDirectory(config, cwd, logger);
      const dataset = await loadDataset(config, cwd, logger);
      const folds = await splitFolds(config, dataset, distributed.writesRun ? store : null);
      const prepared = await prepareExamples(config, dataset, modelDir, cwd, logger);
      return { modelDir, dataset, folds, prepared };
    },
  );
  // Once per process, not per step: each change clears libtorch's oneDNN caches.
  if (config.training.threads > 0) setNumThreads(config.training.threads);
  // The manifest (counts, hash, length statistics; never text) with the truncation rate that only
  // tokenization can tell.
  if (distributed.writesRun) {
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
  }
  const device = distributed.device(resolveDevice(config));
  const classifier = await loadClassifier(config, modelDir, prepared, device);
  let frozen: FrozenRows | null = null;
  const stop = listenForStop(logger, options.signal);
  let sink: TrackingSink;
  let model: FoldModel;
  try {
    if (config.training.frozen_cache.enabled) {
      // Every rank holds the whole cache (ddp ranks read any post; folds ranks any fold's), in
      // its own file when it does not fit the memory budget.
      const built = await buildFrozenCache(classifier, prepared.examples, {
        maxMemoryBytes: config.training.frozen_cache.max_memory_mb * 2 ** 20,
        dir: store.dir,
        file: frozenCacheFile(distributed.rank),
        padTokenId: prepared.padTokenId,
        batchSize: config.inference.batch_size,
        logger,
      });
      frozen = built?.rows ?? null;
    }
    model = await distributed.foldModel(classifier, stop);
    sink = await createRankSink(config, distributed, {
      cwd,
      logger,
      store,
      dataset,
      signal: stop.signal,
    });
  } catch (error) {
    stop.dispose();
    frozen?.cache.dispose();
    classifier.dispose();
    throw error;
  }
  const progressMode = {
    ...config.logging.progress,
    mode: distributed.progress(config.logging.progress.mode),
  };
  const progress = options.showProgress ? createProgressReporter(progressMode) : null;
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
    model,
    trainer: {
      ...camelCaseKeys(config.training),
      inferenceBatchSize: config.inference.batch_size,
      padTokenId: prepared.padTokenId,
      paddingSide: config.model.padding_side,
      outOfMemoryBackoff: distributed.outOfMemoryBackoff(device.startsWith('cuda')),
    },
    sink,
    emit: eventStream([(event) => sink.onEvent(event), progress, options.onEvent]),
    stop,
    logger,
    resumed,
    distributed,
    started,
    close: async () => {
      stop.dispose();
      if (frozen) {
        logFrozenCacheSavings(frozen, logger);
        frozen.cache.dispose();
      }
      classifier.dispose();
      try {
        await sink.close();
      } finally {
        await claim?.release();
      }
    },
  };
}

/**
 * Every rank runs rank 0's config: its run_dir (which may hold the start time), and a rank whose
 * config differs otherwise (another checkout, other overrides) stops, naming the first key.
 */
async function agreeOnConfig(config: Config, distributed: DistributedStrategy): Promise<Config> {
  const reference = await distributed.fromRankZero('config', async () => config);
  const mine = flattenConfig({ ...config, run_dir: reference.run_dir });
  const theirs = flattenConfig(reference);
  for (const key of new Set([...Object.keys(mine), ...Object.keys(theirs)])) {
    if (mine[key] !== theirs[key]) {
      throw new Error(
        `rank ${distributed.rank}'s config differs from rank 0's at ${key}: ` +
          `${JSON.stringify(mine[key])} here, ${JSON.stringify(theirs[key])} on rank 0 ` +
          '(start every rank with the same configs and overrides)',
      );
    }
  }
  return distributed.rank === 0 ? config : Object.freeze({ ...config, run_dir: reference.run_dir });
}

/**
 * This rank's tracking sink: the configured one for the rank that owns the run; for the other
 * ranks of folds mode, one that logs their folds under rank 0's parent run (made after rank 0's,
 * so a local MLflow server rank 0 started is the one they use); none for ddp's other ranks.
 */
async function createRankSink(
  config: Config,
  distributed: DistributedStrategy,
  options: Parameters<typeof createTrackingSink>[1],
): Promise<TrackingSink> {
  if (distributed.tracking === 'none') return noopSink;
  const foldTags: Record<string, string> =
    distributed.mode === 'folds'
      ? { 'mentallam.rank': String(distributed.rank) }
      : distributed.mode === 'ddp'
        ? { 'mentallam.ranks': String(distributed.worldSize) }
        : {};
  return distributed.rankZeroFirst('tracking', () =>
    createTrackingSink(
      config,
      distributed.tracking === 'children'
        ? {
            ...options,
            foldTags,
            attachTo: () => distributed.parentRunId(),
            spoolDir: options.store.rank(distributed.rank).dir,
          }
        : { ...options, foldTags },
    ),
  );
}

/**
 * StratifiedGroupKFold by post, every fold's split file written (folds/fold_{i}.json) when a
 * store is given; returns the folds training.folds selects.
 */
async function splitFolds(
  config: Config,
  dataset: Dataset,
  store: RunStore | null,
): Promise<Fold[]> {
  const splits = camelCaseKeys(config.data.splits);
  const folds = buildFolds(dataset, splits);
  const meta = {
    ...splits,
    stratification: splits.stratify,
    datasetHash: dataset.hash,
    countOverrideReason: dataset.manifest.countOverrideReason,
  };
  if (store)
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
