// Multi-process training (docs/distributed.md): the launch environment, the strategy the recipe
// is given (one process, folds across ranks, data-parallel folds) and the data-parallel model.
export { DataParallelModel, batchRows } from './dataParallelModel.js';
export { DataParallelFolds } from './dataParallelFolds.js';
export { FoldsAcrossRanks } from './foldsAcrossRanks.js';
export { backendFor, DistributedSetupError, joinRanks } from './joinRanks.js';
export {
  launchVariables,
  LaunchEnvironmentError,
  readLaunchEnvironment,
  slurmDefaultPort,
} from './launchEnvironment.js';
export type { LaunchEnvironment } from './launchEnvironment.js';
export { PeerFailureError } from './rankedStrategy.js';
export { singleProcess } from './strategy.js';
export type { DistributedStrategy, TrackingRole } from './strategy.js';
