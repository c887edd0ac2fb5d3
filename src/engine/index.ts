// The engine: the only module that knows the order of things (train, evaluate, aggregate, infer).
export { trainFolds, readSummary } from './trainFolds.js';
export type { FailedFold, FoldResult, TrainFoldsOptions, TrainFoldsResult } from './trainFolds.js';
export type { TrainEvent, TrainEventHandler } from './events.js';
export { createProgressReporter, describeEvent } from './progress.js';
export { createTinyModel, loadDataset, modelDirectory, SetupError } from './setup.js';
export { learningRateAt } from './schedule.js';
export { EarlyStopping } from './earlyStopping.js';
export { setSeed } from './seed.js';
