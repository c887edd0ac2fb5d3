// The programmatic API of mentallam: `import { trainFolds } from 'mentallam'`.

// Training and the run's building blocks.
export {
  trainFolds,
  readSummary,
  createTinyModel,
  loadDataset,
  createProgressReporter,
} from './engine/index.js';
export type {
  TrainEvent,
  TrainEventHandler,
  TrainFoldsOptions,
  TrainFoldsResult,
  FoldResult,
  FailedFold,
} from './engine/index.js';

// The run directory, typed: every file's layout, reader and writer (checked both ways).
export { RunStore, RunFileError } from './run/index.js';
export type { FoldStore, TrainingSummary, RunState, ManifestFile } from './run/index.js';

// Aggregation, registry, inference and the latency bench.
export { aggregate, register } from './aggregate/index.js';
export type {
  AggregateOptions,
  AggregateResult,
  RegisterOptions,
  RegisterResult,
  AggregateSummary,
  InferenceThresholds,
} from './aggregate/index.js';
export { infer, inferFile, InferStoppedError } from './infer/index.js';
export type {
  InferOptions,
  InferResult,
  InferFileOptions,
  InferFileResult,
  Prediction,
} from './infer/index.js';
export { bench } from './bench/index.js';
export type { BenchOptions, BenchResult } from './bench/index.js';
export type { LatencySummary } from './bench/index.js';

// Configuration.
export {
  loadConfig,
  loadConfigSync,
  validateConfig,
  flattenConfig,
  configToYaml,
  overridesToYaml,
  ConfigError,
  defaultConfigDir,
} from './config/index.js';
export type { Config, ConfigProblem, LoadConfigOptions, LoadedConfig } from './config/index.js';

// Data.
export {
  loadRedsm5,
  loadCriteria,
  DataError,
  writeSyntheticDataset,
  synthesizeDataset,
  keywordBaseline,
  stratifiedGroupKFold,
  buildFolds,
  writeFoldFiles,
  readFoldFile,
  buildPrompt,
  loadTokenizer,
  openTokenizer,
  TokenizerError,
  trainTinyTokenizer,
} from './data/index.js';
export type {
  Dataset,
  DatasetManifest,
  Pair,
  Post,
  Criterion,
  Fold,
  Tokenizer,
  TokenizerSource,
  EncodedBatch,
} from './data/index.js';

// Metrics and plots.
export {
  computeBinaryMetrics,
  thresholdSweep,
  tuneThresholds,
  perCriterionMetrics,
  pooledMetrics,
  summarizeAcrossFolds,
  rocCurve,
  precisionRecallCurve,
  renderPlot,
  writePlots,
} from './metrics/index.js';
export type {
  BinaryMetrics,
  ThresholdSweep,
  TunedThresholds,
  CriterionReport,
  PooledMetrics,
  MetricSummary,
} from './metrics/index.js';

// Tracking.
export {
  MlflowClient,
  withParentRun,
  withChildRun,
  resolveTracking,
  startLocalServer,
  syncSpool,
} from './tracking/index.js';

// Infrastructure.
export {
  withRetry,
  defaultRetryPolicy,
  HttpStatusError,
  createLogger,
  writeFileAtomic,
  writeJsonAtomic,
  createRng,
  deriveSeed,
} from './infra/index.js';
export type { RetryPolicy, Logger, LogLevel } from './infra/index.js';

// The native addon.
export { Classifier, nativeInfo, setNumThreads, checkDevice } from './native.js';
export type { NativeInfo } from './native.js';

// The command line, for embedding.
export { runCli, exitCodes } from './cli/index.js';
