import type { TrainRunner } from './program.js';

/**
 * The training implementation `mentallam train` and `mentallam-train` call. Undefined until the
 * engine's trainFolds is plugged in here; the CLI then reports that training is unavailable.
 */
export const runTraining: TrainRunner | undefined = undefined;
