/**
 * Metric key names, declared once: the snake_case names tracking and the run files use, the
 * headline test metrics that training summarises across folds and the report and plots show, and
 * which key holds the early-stopping metric on validation and on test.
 */
import type { EarlyStoppingMetric } from '../config/index.js';
import type { PooledMetrics } from './aggregate.js';

/** camelCase metric names -> snake_case keys (balancedAccuracy -> balanced_accuracy). */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export function snakeCaseRecord(
  record: Record<string, number>,
  prefix = '',
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => [`${prefix}${snakeCase(key)}`, value]),
  );
}

/** The numeric fields of a metrics object (drops the threshold, confusion counts object...). */
export function numericFields(metrics: object): Record<string, number> {
  return Object.fromEntries(
    Object.entries(metrics).filter(
      (entry): entry is [string, number] => typeof entry[1] === 'number',
    ),
  );
}

/** Pooled out-of-fold metrics as keys: overall snake_case fields plus macro_f1. */
export function pooledRecord(pooled: PooledMetrics): Record<string, number> {
  return { ...snakeCaseRecord(numericFields(pooled.overall)), macro_f1: pooled.macroF1 };
}

export function pooledPerCriterionRecord(
  pooled: PooledMetrics,
): Record<string, Record<string, number>> {
  return Object.fromEntries(
    pooled.criteria.map((id) => [id, snakeCaseRecord(numericFields(pooled.perCriterion[id]!))]),
  );
}

/**
 * A fold's headline test metrics (keys of metrics.json's `test`), in the order every report shows
 * them. `bounded`: on a shared [-1, 1] axis with higher = better, so the fold bar chart draws it.
 * Training summarises all of them across folds (summary.json, `metric_mean_*` / `metric_std_*`).
 */
export const headlineMetrics = [
  { key: 'test_f1', bounded: true },
  { key: 'test_precision', bounded: true },
  { key: 'test_recall', bounded: true },
  { key: 'test_macro_f1', bounded: true },
  { key: 'test_average_precision', bounded: true },
  { key: 'test_roc_auc', bounded: true },
  { key: 'test_mcc', bounded: true },
  { key: 'test_balanced_accuracy', bounded: true },
  { key: 'test_brier', bounded: false },
  { key: 'test_at_0_5_f1', bounded: false },
] as const;

/** The headline keys, for summaries across folds. */
export const headlineMetricKeys: readonly string[] = headlineMetrics.map((metric) => metric.key);

/** The headline keys drawn as fold bars. */
export const barMetricKeys: readonly string[] = headlineMetrics
  .filter((metric) => metric.bounded)
  .map((metric) => metric.key);

/** The per-fold table of summary.md and the report: the headline metrics and the global threshold. */
export const tableMetricKeys: readonly string[] = [...headlineMetricKeys, 'threshold_global'];

/**
 * Where each early-stopping metric (training.early_stopping.metric) is found: its key among the
 * validation metrics, and the matching test key (loss has no test counterpart but the Brier score).
 */
export const selectionMetricKeys = {
  f1: { validation: 'f1', test: 'test_f1' },
  loss: { validation: 'loss', test: 'test_brier' },
  auprc: { validation: 'average_precision', test: 'test_average_precision' },
  roc_auc: { validation: 'roc_auc', test: 'test_roc_auc' },
  mcc: { validation: 'mcc', test: 'test_mcc' },
  balanced_accuracy: { validation: 'balanced_accuracy', test: 'test_balanced_accuracy' },
  accuracy: { validation: 'accuracy', test: 'test_accuracy' },
} as const satisfies Record<EarlyStoppingMetric, { validation: string; test: string }>;

/** The test key matching an early-stopping metric named in a (possibly older) config. */
export function testKeyOf(selectionMetric: string): string {
  const known = selectionMetricKeys[selectionMetric as keyof typeof selectionMetricKeys];
  return known?.test ?? `test_${selectionMetric}`;
}
