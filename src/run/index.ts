// The run directory as a typed store: its layout, and a validated write/read pair per file.
export { JsonCodec, Metric, MetricRecord, RunFileError } from './codec.js';
export { ConfigFile, JsonFile, OverridesFile, TextFile } from './files.js';
export { claimNewRun, claimRunForResume, RunDirectoryError } from './claim.js';
export type { RunClaim } from './claim.js';
export {
  foldDirName,
  foldFiles,
  foldOfDirName,
  rankDirName,
  registeredModelFiles,
  runFiles,
  splitFileName,
} from './layout.js';
export {
  fileFormats,
  FoldStore,
  RegisteredModelStore,
  RunStore,
  thresholdTableFile,
} from './store.js';
export type {
  CurvesFile,
  EarlyStoppingState,
  EvaluationEntry,
  FoldCheckpointState,
  FoldMetricsFile,
  FoldResult,
  FoldThresholdsFile,
  PredictionRow,
  PredictionsFile,
} from './foldFormats.js';
export type {
  FailedFold,
  ManifestFile,
  RunState,
  SplitFile,
  TrainingSummary,
} from './runFormats.js';
export { aggregateSchemaId, thresholdsSchemaId } from './aggregateFormats.js';
export type {
  AggregateChecks,
  AggregateFold,
  AggregateSummary,
  BaseModelFile,
  BestFold,
  BestFoldThresholds,
  Calibration,
  CalibrationBin,
  ChildRunLink,
  CriterionRow,
  InferenceThresholds,
  ThresholdStats,
  ThresholdSummary,
  ThresholdTableFile,
} from './aggregateFormats.js';
