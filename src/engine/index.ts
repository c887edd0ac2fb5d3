// The engine: the training recipe (the only module that knows the order of things), its
// components, and the set-up that training, inference and the bench share (model directory,
// device, prompts as token ids, batches, tracking from the config).
export { trainFolds, readSummary } from './trainFolds.js';
export type { FailedFold, FoldResult, TrainFoldsOptions, TrainFoldsResult } from './trainFolds.js';
export type { TrainEvent, TrainEventHandler } from './events.js';
export { resolveConfig } from './configSource.js';
export type { ConfigSource } from './configSource.js';
export { createProgressReporter, describeEvent } from './progress.js';
export type { ProgressMode } from './progress.js';
export {
  createTinyModel,
  generatedModelMarker,
  generateSyntheticData,
  loadDataset,
  modelDirectory,
  resolveConfiguredTracking,
  resolveDevice,
  resolveDtype,
  SetupError,
  syntheticDataMarker,
  tokenizerOptions,
} from './setup.js';
export { findModel, ModelLocationError, modelPathExpectation } from './modelLocation.js';
export type { ModelFormat, ModelLocation } from './modelLocation.js';
export { encodePost, encodePrompt, sharesPrefix } from './prompts.js';
export type { EncodedPost, EncodedPrompt } from './prompts.js';
export { collateBatch, collateSharedBatch, packExamples } from './examples.js';
export type { BatchSegments, ModelBatch, TokenizedExamples } from './examples.js';
export { learningRateAt } from './schedule.js';
export { EarlyStopping } from './earlyStopping.js';
export { setSeed } from './seed.js';
export { listenForStop } from './stopRequest.js';
export type { StopRequest } from './stopRequest.js';
export {
  DistributedSetupError,
  launchVariables,
  LaunchEnvironmentError,
  PeerFailureError,
  readLaunchEnvironment,
} from './distributed/index.js';
export type { LaunchEnvironment } from './distributed/index.js';
