/**
 * Evaluation plots as vega-lite specs, rendered offline to SVG (vega's headless 'none' renderer)
 * and PNG (resvg, no canvas or browser needed; MLflow's artifact viewer previews PNG).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../infra/index.js';
import type { ConfusionCounts } from './binary.js';
import type { PrCurve, RocCurve } from './curves.js';
import type { CriterionReport } from './aggregate.js';
import type { ThresholdSweep } from './threshold.js';

export type PlotSpec = TopLevelSpec;

const schema = 'https://vega.github.io/schema/vega-lite/v6.json';
const width = 360;
const height = 280;
const blue = '#1f77b4';
const grey = '#7f7f7f';
const orange = '#ff7f0e';
const green = '#2ca02c';

function fixed(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'undefined';
}

export interface PrPlotOptions {
  /** Share of positive pairs: the precision of a chance classifier, drawn as the baseline. */
  prevalence: number;
  averagePrecision?: number;
  title?: string;
}

/** PR curve drawn as sklearn's step function (the area under it is average precision). */
export function plotPrCurve(curve: PrCurve, options: PrPlotOptions): PlotSpec {
  // sklearn's arrays run from the lowest threshold (recall 1) to recall 0; plot from recall 0
  // with step-before, so each recall interval takes the precision at its right end, as AP does.
  const points = curve.recall
    .map((recall, i) => ({ recall, precision: curve.precision[i]! }))
    .reverse()
    .map((p, order) => ({ ...p, order }));
  const curveName =
    options.averagePrecision === undefined
      ? 'PR curve'
      : `PR curve (AP = ${fixed(options.averagePrecision)})`;
  const baselineName = `Chance (prevalence = ${fixed(options.prevalence)})`;
  return {
    $schema: schema,
    title: options.title ?? 'Precision-recall curve',
    width,
    height,
    layer: precisionRecallLayers(points, options.prevalence, {
      curve: { strokeWidth: 2, color: { datum: curveName } },
      chance: { mark: { strokeWidth: 1.5 }, color: { datum: baselineName } },
    }),
    config: legendBelow([blue, grey]),
  } as PlotSpec;
}

/**
 * A precision-recall plot's layers: step curves (their colour as `curve.color` encodes it) and
 * the dashed chance line at the prevalence.
 */
export function precisionRecallLayers(
  points: readonly object[],
  prevalence: number,
  style: {
    curve: { strokeWidth: number; color: Record<string, unknown> };
    chance: { mark: Record<string, unknown>; color?: Record<string, unknown> };
  },
): unknown[] {
  return [
    {
      data: { values: points },
      mark: { type: 'line', interpolate: 'step-before', strokeWidth: style.curve.strokeWidth },
      encoding: {
        x: { field: 'recall', type: 'quantitative', title: 'Recall', scale: { domain: [0, 1] } },
        y: {
          field: 'precision',
          type: 'quantitative',
          title: 'Precision',
          scale: { domain: [0, 1] },
        },
        order: { field: 'order' },
        color: style.curve.color,
      },
    },
    {
      data: {
        values: [
          { recall: 0, precision: prevalence },
          { recall: 1, precision: prevalence },
        ],
      },
      mark: { type: 'line', strokeDash: [6, 4], ...style.chance.mark },
      encoding: {
        x: { field: 'recall', type: 'quantitative' },
        y: { field: 'precision', type: 'quantitative' },
        ...(style.chance.color ? { color: style.chance.color } : {}),
      },
    },
  ];
}

/** Legend under the plot; colours follow the order the layers name their series in. */
function legendBelow(range: string[]): Record<string, unknown> {
  return {
    range: { category: range },
    legend: { orient: 'bottom', title: null, direction: 'vertical', labelLimit: 400 },
  };
}

export interface RocPlotOptions {
  rocAuc?: number;
  title?: string;
}

/** ROC curve with the chance diagonal; a one-class curve (NaN rates) is drawn as empty. */
export function plotRocCurve(curve: RocCurve, options: RocPlotOptions = {}): PlotSpec {
  const points = curve.fpr
    .map((fpr, i) => ({ fpr, tpr: curve.tpr[i]!, order: i }))
    .filter((p) => Number.isFinite(p.fpr) && Number.isFinite(p.tpr));
  const curveName =
    options.rocAuc === undefined ? 'ROC curve' : `ROC curve (AUC = ${fixed(options.rocAuc)})`;
  const chanceName = 'Chance (AUC = 0.5)';
  return {
    $schema: schema,
    title: options.title ?? 'ROC curve',
    width,
    height,
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x: {
            field: 'fpr',
            type: 'quantitative',
            title: 'False positive rate',
            scale: { domain: [0, 1] },
          },
          y: {
            field: 'tpr',
            type: 'quantitative',
            title: 'True positive rate',
            scale: { domain: [0, 1] },
          },
          order: { field: 'order' },
          color: { datum: curveName },
        },
      },
      {
        data: {
          values: [
            { fpr: 0, tpr: 0 },
            { fpr: 1, tpr: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [6, 4], strokeWidth: 1.5 },
        encoding: {
          x: { field: 'fpr', type: 'quantitative' },
          y: { field: 'tpr', type: 'quantitative' },
          color: { datum: chanceName },
        },
      },
    ],
    config: legendBelow([blue, grey]),
  } as PlotSpec;
}

export interface F1PlotOptions {
  title?: string;
}

/** Precision, recall and F1 against the threshold, with the chosen threshold marked. */
export function plotF1VsThreshold(sweep: ThresholdSweep, options: F1PlotOptions = {}): PlotSpec {
  const rows = sweep.curve.flatMap((p) => [
    { threshold: p.threshold, metric: 'F1', value: p.f1 },
    { threshold: p.threshold, metric: 'Precision', value: p.precision },
    { threshold: p.threshold, metric: 'Recall', value: p.recall },
  ]);
  const label = `chosen t = ${fixed(sweep.threshold, 2)}, F1 = ${fixed(sweep.f1)}`;
  const marker = [{ threshold: sweep.threshold, value: sweep.f1, label }];
  return {
    $schema: schema,
    title: options.title ?? `F1 vs threshold (${sweep.grid} grid)`,
    width,
    height,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x: {
            field: 'threshold',
            type: 'quantitative',
            title: 'Threshold (predict 1 when score ≥ threshold)',
            scale: { domain: [0, 1] },
          },
          y: { field: 'value', type: 'quantitative', title: 'Score', scale: { domain: [0, 1] } },
          color: {
            field: 'metric',
            type: 'nominal',
            title: null,
            scale: { domain: ['F1', 'Precision', 'Recall'], range: [blue, orange, green] },
          },
          // Same field and title as colour, so vega-lite merges both into one legend.
          strokeDash: {
            field: 'metric',
            type: 'nominal',
            title: null,
            scale: {
              domain: ['F1', 'Precision', 'Recall'],
              range: [
                [1, 0],
                [5, 3],
                [2, 2],
              ],
            },
          },
        },
      },
      {
        data: { values: marker },
        mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
        encoding: { x: { field: 'threshold', type: 'quantitative' } },
      },
      {
        data: { values: marker },
        mark: { type: 'point', filled: true, size: 70, color: 'black' },
        encoding: {
          x: { field: 'threshold', type: 'quantitative' },
          y: { field: 'value', type: 'quantitative' },
        },
      },
      {
        data: { values: marker },
        mark: {
          type: 'text',
          align: sweep.threshold > 0.6 ? 'right' : 'left',
          dx: sweep.threshold > 0.6 ? -6 : 6,
          dy: -10,
          fontSize: 11,
        },
        encoding: {
          x: { field: 'threshold', type: 'quantitative' },
          y: { field: 'value', type: 'quantitative' },
          text: { field: 'label' },
        },
      },
    ],
    config: { legend: { orient: 'bottom', direction: 'horizontal' } },
  } as PlotSpec;
}

export interface ConfusionPlotOptions {
  threshold?: number | null;
  title?: string;
}

/** 2×2 heatmap, rows = actual, columns = predicted (sklearn's layout), with counts and shares. */
export function plotConfusionMatrix(
  counts: ConfusionCounts,
  options: ConfusionPlotOptions = {},
): PlotSpec {
  const total = counts.tn + counts.fp + counts.fn + counts.tp;
  const cell = (actual: string, predicted: string, count: number, name: string) => ({
    actual,
    predicted,
    count,
    label: `${name} ${count}`,
    share: total === 0 ? '' : `${((100 * count) / total).toFixed(1)}%`,
  });
  const cells = [
    cell('0 (negative)', '0 (negative)', counts.tn, 'TN'),
    cell('0 (negative)', '1 (positive)', counts.fp, 'FP'),
    cell('1 (positive)', '0 (negative)', counts.fn, 'FN'),
    cell('1 (positive)', '1 (positive)', counts.tp, 'TP'),
  ];
  const max = Math.max(1, ...cells.map((c) => c.count));
  const order = ['0 (negative)', '1 (positive)'];
  const threshold =
    options.threshold === undefined || options.threshold === null
      ? ''
      : ` at threshold ${fixed(options.threshold, 2)}`;
  const axis = (field: string, title: string) => ({
    field,
    type: 'ordinal' as const,
    title,
    sort: order,
    axis: { labelAngle: 0 },
  });
  return {
    $schema: schema,
    title: options.title ?? `Confusion matrix${threshold}`,
    width: 260,
    height: 260,
    data: { values: cells },
    encoding: { x: axis('predicted', 'Predicted label'), y: axis('actual', 'Actual label') },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 2 },
        encoding: {
          color: {
            field: 'count',
            type: 'quantitative',
            title: 'Pairs',
            scale: { scheme: 'blues', domain: [0, max] },
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 16, fontWeight: 'bold', dy: -8 },
        encoding: {
          text: { field: 'label' },
          color: {
            condition: { test: `datum.count > ${max / 2}`, value: 'white' },
            value: 'black',
          },
        },
      },
      {
        mark: { type: 'text', fontSize: 12, dy: 12 },
        encoding: {
          text: { field: 'share' },
          color: {
            condition: { test: `datum.count > ${max / 2}`, value: 'white' },
            value: 'black',
          },
        },
      },
    ],
  } as PlotSpec;
}

export interface CriterionF1Row {
  criterion: string;
  f1: number;
  /** Positive pairs of the criterion, shown in the axis label so thin support is visible. */
  support?: number;
  /** Optional confidence interval (e.g. bootstrap over posts). */
  lower?: number;
  upper?: number;
}

/** Rows for `plotPerCriterionF1` from a per-criterion or pooled report. */
export function criterionF1Rows(report: CriterionReport): CriterionF1Row[] {
  return report.criteria.map((criterion) => ({
    criterion,
    f1: report.perCriterion[criterion]!.f1,
    support: report.perCriterion[criterion]!.positives,
  }));
}

export interface CriterionPlotOptions {
  macroF1?: number;
  title?: string;
}

/** F1 per criterion as bars, with CI whiskers when given and the macro-F1 as a rule. */
export function plotPerCriterionF1(
  rows: readonly CriterionF1Row[],
  options: CriterionPlotOptions = {},
): PlotSpec {
  const values = rows.map((r) => ({
    ...r,
    name: r.support === undefined ? r.criterion : `${r.criterion} (n+ = ${r.support})`,
    f1Label: fixed(r.f1, 2),
    // Above the whisker when there is one, so the number and the interval do not overlap.
    labelAt: r.upper ?? r.f1,
  }));
  const names = values.map((v) => v.name);
  const x = {
    field: 'name',
    type: 'nominal' as const,
    title: 'Criterion (positive pairs)',
    sort: names,
    axis: { labelAngle: -40 },
  };
  const layers: Record<string, unknown>[] = [
    {
      data: { values },
      mark: { type: 'bar', color: blue },
      encoding: {
        x,
        y: { field: 'f1', type: 'quantitative', title: 'F1', scale: { domain: [0, 1] } },
      },
    },
    {
      data: { values },
      mark: { type: 'text', dy: -6, fontSize: 10 },
      encoding: { x, y: { field: 'labelAt', type: 'quantitative' }, text: { field: 'f1Label' } },
    },
  ];
  const withInterval = values.filter((v) => v.lower !== undefined && v.upper !== undefined);
  if (withInterval.length > 0) {
    layers.push({
      data: { values: withInterval },
      mark: { type: 'rule', color: 'black' },
      encoding: {
        x,
        y: { field: 'lower', type: 'quantitative' },
        y2: { field: 'upper' },
      },
    });
  }
  const hasMacro = options.macroF1 !== undefined && Number.isFinite(options.macroF1);
  if (hasMacro) {
    // The value goes in the subtitle: a text mark on the rule collides with the bar labels.
    layers.push({
      data: { values: [{ f1: options.macroF1 }] },
      mark: { type: 'rule', color: orange, strokeDash: [6, 4], strokeWidth: 1.5 },
      encoding: { y: { field: 'f1', type: 'quantitative' } },
    });
  }
  const title = options.title ?? 'F1 per criterion';
  return {
    $schema: schema,
    title: hasMacro
      ? {
          text: title,
          subtitle: `macro-F1 = ${fixed(options.macroF1!)} (dashed line)`,
          subtitleColor: orange,
        }
      : title,
    width: Math.max(300, 40 * rows.length),
    height,
    layer: layers,
  } as unknown as PlotSpec;
}

export interface LearningCurvePoint {
  step: number;
  trainLoss?: number;
  validationLoss?: number;
  validationMetric?: number;
}

export interface LearningCurveOptions {
  /** Name of validationMetric on the axis, e.g. 'validation F1' or 'validation AUPRC'. */
  metricName?: string;
  /** Step of the best checkpoint, marked on both panels. */
  bestStep?: number;
  title?: string;
}

/** Loss (train, and validation when given) and the validation metric against the step. */
export function plotLearningCurves(
  points: readonly LearningCurvePoint[],
  options: LearningCurveOptions = {},
): PlotSpec {
  const metricName = options.metricName ?? 'validation metric';
  const losses = points.flatMap((p) => [
    ...(p.trainLoss === undefined
      ? []
      : [{ step: p.step, series: 'train loss', value: p.trainLoss }]),
    ...(p.validationLoss === undefined
      ? []
      : [{ step: p.step, series: 'validation loss', value: p.validationLoss }]),
  ]);
  const metric = points
    .filter((p) => p.validationMetric !== undefined)
    .map((p) => ({ step: p.step, value: p.validationMetric! }));
  const x = { field: 'step', type: 'quantitative' as const, title: 'Optimizer step' };
  const best =
    options.bestStep === undefined
      ? []
      : [
          {
            data: { values: [{ step: options.bestStep }] },
            mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
            encoding: { x: { field: 'step', type: 'quantitative' } },
          },
        ];
  return {
    $schema: schema,
    title: options.title ?? 'Learning curves',
    vconcat: [
      {
        width,
        height: 180,
        layer: [
          {
            data: { values: losses },
            mark: { type: 'line', strokeWidth: 1.5 },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: 'Loss' },
              color: {
                field: 'series',
                type: 'nominal',
                title: null,
                scale: { domain: ['train loss', 'validation loss'], range: [blue, orange] },
              },
            },
          },
          ...best,
        ],
      },
      {
        width,
        height: 180,
        layer: [
          {
            data: { values: metric },
            mark: { type: 'line', strokeWidth: 1.5, color: green, point: { color: green } },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: metricName },
            },
          },
          ...best,
        ],
      },
    ],
    // Both panels on one step axis, so the best-step marker lines up.
    resolve: { scale: { x: 'shared' } },
    config: { legend: { orient: 'top-right' } },
  } as PlotSpec;
}

export interface RenderOptions {
  /** PNG pixels per SVG unit; 2 keeps text sharp in MLflow's viewer. */
  scale?: number;
  /** Extra font files for machines without system fonts (resvg draws no text without one). */
  fontFiles?: string[];
  fontFamily?: string;
}

export interface RenderedPlot {
  svg: string;
  png: Uint8Array;
}

/** vega-lite → vega → SVG through the headless 'none' renderer → PNG through resvg. */
export async function renderPlot(
  spec: PlotSpec,
  options: RenderOptions = {},
): Promise<RenderedPlot> {
  const vegaSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none' });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const family = options.fontFamily ?? 'DejaVu Sans';
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: options.scale ?? 2 },
    font: {
      loadSystemFonts: true,
      fontFiles: options.fontFiles ?? [],
      // vega writes font-family "sans-serif"; name a concrete family so resvg does not pick an
      // arbitrary first system font (or none).
      defaultFontFamily: family,
      sansSerifFamily: family,
    },
  });
  const png = resvg.render().asPng();
  return { svg, png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength) };
}

const plotName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Renders each spec and writes `<name>.svg` and `<name>.png` in `dir` (created if missing),
 * each atomically (temp file + rename). Returns the written paths in order.
 */
export async function writePlots(
  dir: string,
  plots: Readonly<Record<string, PlotSpec>>,
  options: RenderOptions = {},
): Promise<string[]> {
  for (const name of Object.keys(plots)) {
    if (!plotName.test(name)) {
      throw new Error(`plot name ${JSON.stringify(name)} is not a plain file name`);
    }
  }
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, spec] of Object.entries(plots)) {
    const rendered = await renderPlot(spec, options);
    const svgPath = join(dir, `${name}.svg`);
    const pngPath = join(dir, `${name}.png`);
    await writeFileAtomic(svgPath, rendered.svg);
    await writeFileAtomic(pngPath, rendered.png);
    written.push(svgPath, pngPath);
  }
  return written;
}
