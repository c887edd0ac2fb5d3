// Inference: a trained adapter, a run or a registered model -> probabilities and labels.
export {
  checkInferOptions,
  defaultChunkSize,
  hashId,
  infer,
  InferInterruptedError,
  InferUsageError,
} from './infer.js';
export { LatencyRecorder, latencyFigures } from './latency.js';
export type { BatchTiming, InferLatency } from './latency.js';
export type {
  CheckedInferOptions,
  InferCounts,
  InferOptions,
  InferResult,
  ModelRunOptions,
  Prediction,
} from './infer.js';
export { findCriterion, resolveCriterion } from './criteria.js';
export {
  createJsonlWriter,
  isErrorRecord,
  parseInputLine,
  readLineChunks,
  ResumeMismatchError,
  validateInput,
} from './jsonl.js';
export type { ErrorRecord, InferInput, InputLine, ParsedLine, SkipRecords } from './jsonl.js';
export {
  defaultCacheDir,
  ModelResolutionError,
  readAdapterSettings,
  resolveModel,
  splitFoldSuffix,
} from './model.js';
export type {
  AdapterSettings,
  ModelDescription,
  ModelReference,
  ModelSource,
  ResolvedAdapter,
  ResolvedModel,
  ResolveModelOptions,
} from './model.js';
export { encodePair, loadNativeModel, Predictor } from './predictor.js';
export type { InferenceModel, LoadModelSpec, ModelLoader } from './predictor.js';
export {
  DEFAULT_THRESHOLD,
  meanThresholds,
  parseThresholds,
  readThresholds,
  thresholdFor,
} from './thresholds.js';
export type { ThresholdOrigin, ThresholdTable } from './thresholds.js';
export { inferFile, InferStoppedError, outputCompanions } from './inferFile.js';
export type { InferFileOptions, InferFileResult, KeptOutput } from './inferFile.js';
export { createInferProgress, countLines } from './progress.js';
export type { InferProgress, InferProgressOptions } from './progress.js';
export { findResumePoint, ResumeFileError } from './resumePoint.js';
export type { ResumePoint } from './resumePoint.js';
