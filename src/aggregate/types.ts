/**
 * What aggregation holds in memory: one fold's artifacts, where they came from, and the config
 * values it uses. The file formats are the run store's (src/run/).
 */
import type {
  FoldMetricsFile,
  FoldThresholdsFile,
  PredictionsFile,
  TrainingSummary,
} from '../run/index.js';

export type {
  AggregateChecks,
  BestFold,
  Calibration,
  CalibrationBin,
  ChildRunLink,
  CriterionRow,
  FoldMetricsFile,
  FoldThresholdsFile,
  PredictionRow,
  PredictionsFile,
  ThresholdStats,
  ThresholdSummary,
} from '../run/index.js';

/** Everything aggregation needs about one fold. */
export interface FoldArtifacts {
  fold: number;
  /** The fold's MLflow child run, when there is one. */
  runId: string | null;
  /** Child run status as MLflow reports it (undefined when read from a directory). */
  status?: string;
  predictions: PredictionsFile;
  thresholds: FoldThresholdsFile;
  metrics: FoldMetricsFile;
  /** Local best adapter directory, when the fold was read from a run directory. */
  bestAdapterDir: string | null;
}

/** Where the fold artifacts came from and what is known about the parent run. */
export interface RunSource {
  kind: 'run-dir' | 'mlflow';
  /** The training's run directory, when read from disk. */
  runDir: string | null;
  parentRunId: string | null;
  experimentId: string | null;
  /** Redacted tracking URI the runs live on (for links), when known. */
  trackingUri: string | null;
  /** The resolved config exactly as saved (config.yaml bytes): hashed for provenance. */
  configYaml: string;
  config: ConfigView;
  datasetHash: string | null;
  /** The training's summary.json (null when the run did not finish or it was not there). */
  trainingSummary: TrainingSummary | null;
  folds: FoldArtifacts[];
  warnings: string[];
}

/** The few config values aggregation and registration use, with the defaults documented. */
export interface ConfigView {
  /** training.early_stopping.metric (default 'f1'). */
  selectionMetric: string;
  /** training.early_stopping.mode (default 'max', 'min' for loss). */
  selectionMode: 'max' | 'min';
  modelName: string | null;
  modelPath: string | null;
  nSplits: number | null;
  /** training.folds: the folds that were meant to run (null = all). */
  plannedFolds: number[] | null;
  seed: number | null;
  mlflowEnabled: boolean;
  trackingUri: string | null;
  /** The whole parsed config (for the base-model reference). */
  raw: Record<string, unknown>;
}
