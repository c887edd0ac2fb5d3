/**
 * Shapes of the per-fold artifacts the training writes (the run-directory contract) and of what
 * aggregation produces. The file shapes are read defensively: a field the training did not write
 * is reported, never guessed.
 */
import type { MetricSummary } from '../../metrics/index.js';

/** One scored (post, criterion) pair: identity and score only, never post text. */
export interface PredictionRow {
  postId: string;
  criterionId: string;
  label: number;
  score: number;
}

/** `fold_{i}/predictions.json`. */
export interface PredictionsFile {
  fold: number;
  test: PredictionRow[];
  validation: PredictionRow[];
}

/** `fold_{i}/thresholds.json`. */
export interface FoldThresholdsFile {
  global: number;
  perCriterion: Record<string, number>;
  fellBack: string[];
  minPositives?: number;
  detail?: unknown;
  datasetHash?: string;
  fold: number;
}

/** `fold_{i}/metrics.json`. */
export interface FoldMetricsFile {
  test: Record<string, number>;
  confusionMatrix?: { tn: number; fp: number; fn: number; tp: number };
  bestStep?: number;
  /** The early-stopping metric on the inner validation split at the best step. */
  bestValidation?: number;
  steps?: number;
  stoppedEarly?: boolean;
  validationHistory?: unknown;
}

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
  /** The training's summary.json, kept so its keys survive in the extended summary. */
  trainingSummary: Record<string, unknown> | null;
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

export interface CalibrationBin {
  /** Bin index i covers (i/10, (i+1)/10], bin 0 also takes 0 (sklearn's calibration_curve). */
  bin: number;
  lower: number;
  upper: number;
  count: number;
  meanPredicted: number;
  fractionPositive: number;
}

export interface Calibration {
  nBins: number;
  /** Non-empty bins only, as sklearn returns them. */
  bins: CalibrationBin[];
  /** Expected calibration error: Σ count/n · |fractionPositive − meanPredicted|. */
  ece: number;
  n: number;
}

export interface BestFold {
  fold: number;
  runId: string | null;
  /** Config name of the early-stopping metric, e.g. 'f1'. */
  metric: string;
  mode: 'max' | 'min';
  /** Always 'validation': the held-out test folds are never used to pick a model. */
  selectedOn: 'validation';
  validationValue: number;
  /** That fold's test value of the matching metric, for information only. */
  testValue: number | null;
}

export interface ThresholdStats extends MetricSummary {
  values: number[];
}

export interface ThresholdSummary {
  perFold: {
    fold: number;
    runId: string | null;
    global: number;
    perCriterion: Record<string, number>;
    fellBack: string[];
  }[];
  global: ThresholdStats;
  perCriterion: Record<string, ThresholdStats>;
}

export interface CriterionRow {
  criterion: string;
  f1: number;
  precision: number;
  recall: number;
  averagePrecision: number;
  /** Positive pairs of the criterion (pooled over folds). */
  support: number;
  n: number;
}

export interface AggregateChecks {
  /** Each fold's test_f1 recomputed from predictions.json at its thresholds matches metrics.json. */
  foldMetricsReproduced: boolean;
  mismatches: { fold: number; metric: string; reported: number; recomputed: number }[];
  /** (post, criterion) pairs found in the test part of more than one fold (should be 0). */
  pairsInSeveralTestFolds: number;
  /** Posts found in the test part of more than one fold (should be 0: folds are grouped by post). */
  postsInSeveralTestFolds: number;
  /** Posts of a fold's validation split also in its test split (should be 0). */
  validationTestOverlap: { fold: number; posts: number }[];
  /** Folds whose thresholds.json names another dataset hash than the run. */
  datasetHashMismatches: number[];
  /** Folds the config planned that have no finished artifacts. */
  missingFolds: number[];
}

export interface ChildRunLink {
  fold: number;
  runId: string | null;
  url: string | null;
}
