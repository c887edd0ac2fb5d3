/**
 * The names of everything in a run directory, declared once. Training writes them, the tracking
 * sink uploads them under the same names (the run-level files to the parent MLflow run, a fold's
 * files to its child run), and aggregation, inference and the bench read them back, from disk or
 * downloaded from MLflow into this same layout.
 */

/** Files and folders at the top of a run directory. */
export const runFiles = {
  /** The resolved config (YAML), written first. */
  config: 'config.yaml',
  /** The overrides the run was started with (YAML list), re-applied by --resume. */
  overrides: 'overrides.yaml',
  /** Data set counts, hash, length statistics and truncation rate; never text. */
  manifest: 'manifest.json',
  /** The outer folds' post lists: folds/fold_{i}.json. */
  splitsDir: 'folds',
  /** Training's result: folds, pooled and across-fold metrics. */
  summary: 'summary.json',
  /** Parent and child MLflow run ids and each fold's status, for --resume. */
  runState: 'run-state.json',
  /** Aggregation's result (the training's summary.json is never overwritten). */
  aggregate: 'aggregate.json',
  summaryMarkdown: 'summary.md',
  /** Thresholds for inference: the fold mean (run level) or the best fold's (registered copy). */
  thresholds: 'thresholds.json',
  report: 'report.html',
  /** Run-level plots (aggregation's cv_*). */
  plotsDir: 'plots',
  /** The latency bench's default output folder. */
  benchDir: 'bench',
  /** Which process runs the run now (pid, host, start time); removed when it ends. */
  lock: 'run.lock',
  /**
   * Multi-process runs: what a rank other than 0 keeps for itself, ranks/rank_{r}/ (the fold
   * trainer's adapters and checkpoints in ddp mode, the tracking spool in folds mode).
   */
  ranksDir: 'ranks',
} as const;

/** Files and folders in each fold_{i}/ (and, flat, in the fold's MLflow child run). */
export const foldFiles = {
  /** Pair identity, label and score of every validation and test pair; never text. */
  predictions: 'predictions.json',
  thresholds: 'thresholds.json',
  metrics: 'metrics.json',
  curves: 'curves.json',
  /** The fold's entry of summary.json, read back when a resumed run skips the fold. */
  result: 'result.json',
  plotsDir: 'plots',
  /** The adapter at the best validation step, in peft's layout. */
  bestAdapterDir: 'best_adapter',
  /** Adapter, optimizer and trainer state of an interrupted fold. */
  checkpointDir: 'checkpoint',
  /** In checkpoint/: step, epoch, batch position, RNG draws, early-stopping state. */
  trainerState: 'trainer_state.json',
} as const;

/** The folder a registered model version holds: the adapter files plus these. */
export const registeredModelFiles = {
  thresholds: 'thresholds.json',
  config: 'config.yaml',
  /** Which base checkpoint the adapter belongs to, and where the version came from. */
  baseModel: 'base_model.json',
} as const;

export function foldDirName(fold: number): string {
  return `fold_${fold}`;
}

/** The fold index of a `fold_{i}` name, or null for any other name. */
export function foldOfDirName(name: string): number | null {
  const match = /^fold_(\d+)$/.exec(name);
  return match ? Number(match[1]) : null;
}

export function rankDirName(rank: number): string {
  return `rank_${rank}`;
}

export function splitFileName(fold: number): string {
  return `${foldDirName(fold)}.json`;
}
