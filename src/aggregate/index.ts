// Fold aggregation (aggregate.json, summary.md, thresholds.json, report.html) and Model Registry
// registration, reading the run store.
export {
  aggregate,
  classifyRunReference,
  connectTracking,
  isUnreachable,
  parentRunMetrics,
  RunReferenceError,
  TrackingUnreachableError,
} from './aggregate.js';
export type { AggregateFiles, AggregateOptions, AggregateResult } from './aggregate.js';
export { defaultAlias, defaultModelName, register, registeredModelPath } from './register.js';
export type { RegisterOptions, RegisterResult } from './register.js';
export {
  calibrationCurve,
  checkFolds,
  configHash,
  parseConfigView,
  poolFolds,
  selectBestFold,
  summarizeFoldMetrics,
  summarizeThresholds,
} from './compute.js';
export {
  asBestFoldThresholds,
  buildInferenceThresholds,
  buildSummary,
  checkInferenceThresholds,
  runUrl,
  summarySchema,
  thresholdsSchema,
  validateInferenceThresholds,
} from './summary.js';
export type { AggregateSummary, BestFoldThresholds, InferenceThresholds } from './summary.js';
export { formatNumber, renderReportHtml, renderSummaryMarkdown } from './report.js';
export { childRuns, findRunDirectory, readFromMlflow, readRunDirectory } from './sources.js';
export type * from './types.js';
