// Metrics, threshold tuning, curves and plots for binary (post, criterion) predictions.
export {
  brierScore,
  computeBinaryMetrics,
  confusionFromPredictions,
  metricsToRecord,
  predictAtThreshold,
  scalarMetricNames,
  thresholdMetricsFromConfusion,
} from './binary.js';
export type {
  BinaryMetrics,
  ConfusionCounts,
  ScalarMetricName,
  ThresholdMetrics,
} from './binary.js';
export {
  auc,
  averagePrecisionScore,
  precisionRecallCurve,
  rocAucScore,
  rocCurve,
} from './curves.js';
export type { CurveOptions, PrCurve, RocCurve } from './curves.js';
export { fixedThresholdGrid, thresholdSweep, tuneThresholds } from './threshold.js';
export type {
  CriterionThreshold,
  SweepOptions,
  SweepPoint,
  ThresholdGrid,
  ThresholdSweep,
  TunedThresholds,
  TuneOptions,
} from './threshold.js';
export { macroF1, perCriterionMetrics, pooledMetrics, summarizeAcrossFolds } from './aggregate.js';
export type {
  CriterionReport,
  FoldPredictions,
  MetricSummary,
  PooledMetrics,
  Thresholds,
} from './aggregate.js';
export {
  criterionF1Rows,
  plotConfusionMatrix,
  plotF1VsThreshold,
  plotLearningCurves,
  plotPerCriterionF1,
  plotPrCurve,
  plotRocCurve,
  precisionRecallLayers,
  renderPlot,
  writePlots,
} from './plots.js';
export type {
  ConfusionPlotOptions,
  CriterionF1Row,
  CriterionPlotOptions,
  F1PlotOptions,
  LearningCurveOptions,
  LearningCurvePoint,
  PlotSpec,
  PrPlotOptions,
  RenderedPlot,
  RenderOptions,
  RocPlotOptions,
} from './plots.js';
export {
  barMetricKeys,
  headlineMetricKeys,
  headlineMetrics,
  numericFields,
  pooledPerCriterionRecord,
  pooledRecord,
  selectionMetricKeys,
  snakeCase,
  snakeCaseRecord,
  tableMetricKeys,
  testKeyOf,
} from './keys.js';
