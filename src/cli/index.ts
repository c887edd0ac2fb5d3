// The command-line interface, callable in-process (runCli) for tests and embedding.
export { createProgram, exitCodes, registerTrainCommand, runCli } from './program.js';
export type { CliIo, CliOptions, TrainCommandArgs, TrainRunner } from './program.js';
export { runTraining } from './train.js';
