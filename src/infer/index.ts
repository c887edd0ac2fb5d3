// Inference: a trained adapter, a run or a registered model -> probabilities and labels.
export { hashId, infer, InferUsageError, latencyFigures } from './infer.js';
export type {
  InferCounts,
  InferLatency,
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
  validateInput,
} from './jsonl.js';
export type { ErrorRecord, InferInput, InputLine, ParsedLine } from './jsonl.js';
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
export type { BatchTiming, InferenceModel, LoadModelSpec, ModelLoader } from './predictor.js';
export {
  DEFAULT_THRESHOLD,
  meanThresholds,
  parseThresholds,
  readThresholds,
  thresholdFor,
} from './thresholds.js';
export type { ThresholdOrigin, ThresholdTable } from './thresholds.js';
