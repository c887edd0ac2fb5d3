import { InterruptedError } from '../tracking/index.js';
import { trainFolds } from '../engine/index.js';
import { exitCodes, type TrainRunner } from './program.js';

/**
 * The training implementation behind `mentallam train` and `mentallam-train`: a thin layer over
 * trainFolds that draws progress on stderr and maps an interrupt to exit code 130.
 */
function fixed(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(4);
}

export const runTraining: TrainRunner = async (args) => {
  try {
    const result = await trainFolds({
      config: args.config,
      overrides: args.overrides,
      logger: args.logger,
      showProgress: true,
    });
    args.io.stdout.write(
      `${JSON.stringify({ runDir: result.runDir, parentRunId: result.parentRunId, pooled: result.pooled }, null, 2)}\n`,
    );
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof InterruptedError) {
      args.io.stderr.write(`mentallam train: ${error.message}\n`);
      return exitCodes.interrupted;
    }
    throw error;
  }
};
