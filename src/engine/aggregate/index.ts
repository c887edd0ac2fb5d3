// Fold aggregation (summary.json/.md, thresholds.json, report.html) and Model Registry registration.
export {
  aggregate,
  connectTracking,
  isUnreachable,
  parentRunMetrics,
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
  runUrl,
  summarySchema,
  thresholdsSchema,
  validateInferenceThresholds,
} from './summary.js';
export type { AggregateSummary, BestFoldThresholds, InferenceThresholds } from './summary.js';
export { formatNumber, renderReportHtml, renderSummaryMarkdown } from './report.js';
export {
  childRuns,
  findRunDirectory,
  parseFoldMetrics,
  parseFoldThresholds,
  parsePredictions,
  readFromMlflow,
  readRunDirectory,
} from './sources.js';
export type * from './types.js';
