/**
 * Vega-lite specs of the run-level plots (fold bars with error bars, PR curves of every fold,
 * reliability diagram); rendered with the metrics module's renderPlot like every other plot.
 */
import {
  barMetricKeys,
  precisionRecallCurve,
  precisionRecallLayers,
  type MetricSummary,
  type PlotSpec,
} from '../metrics/index.js';
import type { Calibration, FoldArtifacts } from './types.js';

const schema = 'https://vega.github.io/schema/vega-lite/v6.json';
const width = 420;
const height = 300;

function fixed(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'undefined';
}

/**
 * One bar per metric at the fold mean, an error bar of ± one sample std, and each fold's own value
 * as a dot, so a reader sees both the spread and the points behind it.
 */
export function plotFoldMetricBars(
  folds: readonly FoldArtifacts[],
  acrossFolds: Readonly<Record<string, MetricSummary>>,
): PlotSpec {
  const metrics = barMetricKeys.filter(
    (key) => acrossFolds[key] !== undefined && Number.isFinite(acrossFolds[key]!.mean),
  );
  const label = (key: string) => key.replace(/^test_/, '');
  const means = metrics.map((key) => {
    const s = acrossFolds[key]!;
    const hasStd = Number.isFinite(s.std);
    return {
      metric: label(key),
      mean: s.mean,
      lower: hasStd ? s.mean - s.std : s.mean,
      upper: hasStd ? s.mean + s.std : s.mean,
      text: hasStd ? `${fixed(s.mean, 2)}±${fixed(s.std, 2)}` : fixed(s.mean, 2),
    };
  });
  const points = folds.flatMap((fold) =>
    metrics
      .map((key) => ({
        metric: label(key),
        fold: `fold ${fold.fold}`,
        value: fold.metrics.test[key]!,
      }))
      .filter((p) => Number.isFinite(p.value)),
  );
  // MCC can be negative: the axis starts at 0 unless a value (or whisker) is below it.
  const lowest = Math.min(0, ...means.map((m) => m.lower), ...points.map((p) => p.value));
  const low = lowest >= 0 ? 0 : Math.floor(lowest * 10) / 10;
  const x = {
    field: 'metric',
    type: 'nominal' as const,
    title: null,
    sort: metrics.map(label),
    axis: { labelAngle: -30 },
  };
  return {
    $schema: schema,
    title: {
      text: 'Test metrics per fold',
      subtitle: 'bar = mean over folds, whisker = ± 1 sample std (ddof 1), dots = folds',
    },
    width: Math.max(width, 60 * metrics.length),
    height,
    layer: [
      {
        data: { values: means },
        mark: { type: 'bar', color: '#9ecae1', width: { band: 0.8 } },
        encoding: {
          x,
          y: { field: 'mean', type: 'quantitative', title: 'Value', scale: { domain: [low, 1] } },
        },
      },
      {
        data: { values: means },
        mark: { type: 'rule', color: 'black', strokeWidth: 1.5 },
        encoding: { x, y: { field: 'lower', type: 'quantitative' }, y2: { field: 'upper' } },
      },
      {
        data: { values: means },
        mark: { type: 'text', dy: -8, fontSize: 9 },
        encoding: { x, y: { field: 'upper', type: 'quantitative' }, text: { field: 'text' } },
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 40, opacity: 0.9 },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative' },
          xOffset: { field: 'fold', type: 'nominal' },
          color: { field: 'fold', type: 'nominal', title: null },
        },
      },
    ],
    // The fold dots spread within each band; the bars and whiskers keep the whole band.
    resolve: { scale: { xOffset: 'independent' } },
    config: { legend: { orient: 'bottom', direction: 'horizontal' } },
  } as unknown as PlotSpec;
}

/** Every fold's test PR curve on one chart (sklearn step shape), with the pooled prevalence. */
export function plotFoldPrCurves(folds: readonly FoldArtifacts[]): PlotSpec {
  const points: { recall: number; precision: number; order: number; series: string }[] = [];
  let positives = 0;
  let total = 0;
  for (const fold of folds) {
    const labels = fold.predictions.test.map((row) => row.label);
    const scores = fold.predictions.test.map((row) => row.score);
    if (labels.length === 0) continue;
    positives += labels.reduce((a: number, b) => a + b, 0);
    total += labels.length;
    const curve = precisionRecallCurve(labels, scores);
    const ap = fold.metrics.test['test_average_precision'];
    const series = `fold ${fold.fold}${typeof ap === 'number' ? ` (AP = ${fixed(ap)})` : ''}`;
    // From recall 0 upwards with step-before, as the single-fold PR plot draws it.
    const ordered = curve.recall
      .map((recall, i) => ({ recall, precision: curve.precision[i]! }))
      .reverse();
    ordered.forEach((p, order) => points.push({ ...p, order, series }));
  }
  const prevalence = total === 0 ? 0 : positives / total;
  return {
    $schema: schema,
    title: {
      text: 'Precision-recall curves of the test folds',
      subtitle: `dashed: chance = pooled prevalence ${fixed(prevalence)}`,
    },
    width,
    height,
    layer: precisionRecallLayers(points, prevalence, {
      curve: { strokeWidth: 1.8, color: { field: 'series', type: 'nominal', title: null } },
      chance: { mark: { color: '#7f7f7f', strokeWidth: 1.2 } },
    }),
    config: { legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } },
  } as unknown as PlotSpec;
}

/** Reliability diagram: fraction of positives against mean predicted probability per bin. */
export function plotCalibration(calibration: Calibration): PlotSpec {
  const values = calibration.bins.map((bin) => ({
    ...bin,
    label: `n=${bin.count}`,
  }));
  return {
    $schema: schema,
    title: {
      text: 'Reliability diagram (pooled test predictions)',
      subtitle: `${calibration.nBins} equal-width bins, empty bins omitted; ECE = ${fixed(calibration.ece)}; dashed = perfect calibration`,
    },
    width: height,
    height,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [6, 4], color: '#7f7f7f' },
        encoding: {
          x: {
            field: 'x',
            type: 'quantitative',
            title: 'Mean predicted probability',
            scale: { domain: [0, 1] },
          },
          y: {
            field: 'y',
            type: 'quantitative',
            title: 'Fraction of positives',
            scale: { domain: [0, 1] },
          },
        },
      },
      {
        data: { values },
        mark: { type: 'line', color: '#1f77b4', point: { color: '#1f77b4', size: 50 } },
        encoding: {
          x: { field: 'meanPredicted', type: 'quantitative' },
          y: { field: 'fractionPositive', type: 'quantitative' },
        },
      },
      {
        data: { values },
        mark: { type: 'text', dy: -10, fontSize: 9, color: '#555555' },
        encoding: {
          x: { field: 'meanPredicted', type: 'quantitative' },
          y: { field: 'fractionPositive', type: 'quantitative' },
          text: { field: 'label' },
        },
      },
    ],
  } as unknown as PlotSpec;
}
