import { InterruptedError } from '../tracking/index.js';
import { trainFolds } from '../engine/index.js';
import { RunDirectoryError } from '../run/index.js';
import { exitCodes, type TrainRunner } from './program.js';

// null too: a rank other than 0 gets the result as JSON from rank 0, where NaN (the std over a
// single fold) became null.
function fixed(value: number | null | undefined): string {
  return value === undefined || value === null || Number.isNaN(value) ? 'n/a' : value.toFixed(4);
}

/**
 * The training implementation behind `mentallam train` and `mentallam-train`: a thin layer over
 * trainFolds that draws progress on stderr, prints a short result on stdout and maps an
 * interrupt to exit code 130, a run directory that is taken or in use to 2.
 */
export const runTraining: TrainRunner = async (args) => {
  try {
    const result = await trainFolds({
      config: args.config,
      clockKeys: args.clockKeys,
      overrides: args.overrides,
      logger: args.logger,
      showProgress: true,
      resume: args.resume !== undefined,
    });
    const pooled = result.pooled;
    const acrossFolds = result.acrossFolds['test_f1'];
    const lines = [
      `run directory: ${result.runDir}`,
      ...(result.parentRunId ? [`MLflow parent run: ${result.parentRunId}`] : []),
      `pooled out-of-fold: F1 ${fixed(pooled['f1'])}, macro-F1 ${fixed(pooled['macro_f1'])}, ` +
        `AP ${fixed(pooled['average_precision'])}, ROC-AUC ${fixed(pooled['roc_auc'])}`,
      ...(acrossFolds
        ? [`test F1 across folds: ${fixed(acrossFolds.mean)} ± ${fixed(acrossFolds.std)}`]
        : []),
      `summary: ${result.summaryPath}`,
    ];
    args.io.stdout.write(`${lines.join('\n')}\n`);
    if (result.failedFolds.length > 0) {
      // Everything is written; a non-zero exit still tells a nightly job that folds are missing.
      const failed = result.failedFolds.map((failed) => `  - ${failed.message}`).join('\n');
      args.io.stderr.write(
        `mentallam train: ${result.failedFolds.length} fold(s) failed; the pooled metrics ` +
          `cover the others only:\n${failed}\n`,
      );
      return exitCodes.failure;
    }
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof InterruptedError) {
      args.io.stderr.write(`mentallam train: ${error.message}\n`);
      return exitCodes.interrupted;
    }
    // A run_dir that holds a run, or one in use: nothing was run.
    if (error instanceof RunDirectoryError) {
      args.io.stderr.write(`mentallam train: ${error.message}\n`);
      return exitCodes.usage;
    }
    throw error;
  }
};
