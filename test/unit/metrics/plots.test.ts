/**
 * Every plot renders to well-formed SVG with its titles and to a PNG. Set
 * MENTALLAM_PLOT_DIR=/some/dir to keep the rendered files for looking at them.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '../../../src/infra/index.js';
import {
  computeBinaryMetrics,
  criterionF1Rows,
  perCriterionMetrics,
  plotConfusionMatrix,
  plotF1VsThreshold,
  plotLearningCurves,
  plotPerCriterionF1,
  plotPrCurve,
  plotRocCurve,
  precisionRecallCurve,
  renderPlot,
  rocCurve,
  thresholdSweep,
  writePlots,
  type PlotSpec,
} from '../../../src/metrics/index.js';

const rng = createRng(3);
const labels: number[] = [];
const scores: number[] = [];
const ids: string[] = [];
for (let i = 0; i < 1800; i++) {
  const label = rng() < 0.06 + 0.015 * (i % 9) ? 1 : 0;
  labels.push(label);
  ids.push(`A${(i % 9) + 1}`);
  scores.push(Math.min(1, 0.35 * rng() + (label === 1 ? 0.55 * rng() : 0.25 * rng())));
}
const sweep = thresholdSweep(labels, scores);
const metrics = computeBinaryMetrics(labels, scores, sweep.threshold);
const report = perCriterionMetrics(labels, scores, ids, sweep.threshold);

const plots: Record<string, { spec: PlotSpec; texts: string[] }> = {
  pr_curve: {
    spec: plotPrCurve(precisionRecallCurve(labels, scores), {
      prevalence: metrics.prevalence,
      averagePrecision: metrics.averagePrecision,
    }),
    texts: ['Precision-recall curve', 'Recall', 'Precision', 'AP =', 'prevalence ='],
  },
  roc_curve: {
    spec: plotRocCurve(rocCurve(labels, scores), { rocAuc: metrics.rocAuc }),
    texts: ['ROC curve', 'False positive rate', 'True positive rate', 'AUC =', 'Chance'],
  },
  f1_threshold: {
    spec: plotF1VsThreshold(sweep),
    texts: ['F1 vs threshold', 'Threshold', 'chosen t =', 'Precision', 'Recall'],
  },
  confusion_matrix: {
    spec: plotConfusionMatrix(metrics.confusion, { threshold: sweep.threshold }),
    texts: ['Confusion matrix', 'Predicted label', 'Actual label', `TP ${metrics.confusion.tp}`],
  },
  per_criterion_f1: {
    spec: plotPerCriterionF1(
      criterionF1Rows(report).map((row) => ({
        ...row,
        lower: Math.max(0, row.f1 - 0.1),
        upper: Math.min(1, row.f1 + 0.1),
      })),
      { macroF1: report.macroF1 },
    ),
    texts: ['F1 per criterion', 'A1 (n+ =', 'A9', 'macro-F1 ='],
  },
  learning_curves: {
    spec: plotLearningCurves(
      Array.from({ length: 30 }, (_, i) => ({
        step: (i + 1) * 10,
        trainLoss: 0.7 * Math.exp(-i / 10) + 0.05 * rng(),
        ...(i % 5 === 4
          ? {
              validationLoss: 0.5 * Math.exp(-i / 15) + 0.1,
              validationMetric: 0.6 - 0.3 * Math.exp(-i / 8),
            }
          : {}),
      })),
      { metricName: 'validation F1', bestStep: 250 },
    ),
    texts: ['Learning curves', 'Optimizer step', 'Loss', 'validation F1', 'train loss'],
  },
};

/**
 * A small XML well-formedness check (no XML parser is a dependency): every tag's attributes are
 * quoted, entities are known, and open/close tags nest. Returns the problem or null.
 */
function xmlProblem(xml: string): string | null {
  const stack: string[] = [];
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/g;
  let match: RegExpExecArray | null;
  while ((match = token.exec(xml)) !== null) {
    const [whole, closing, name, , selfClosing] = match;
    if (whole.startsWith('<!--') || whole.startsWith('<?')) continue;
    if (name === undefined) return `stray ${JSON.stringify(whole)} at ${match.index}`;
    if (closing === '/') {
      if (stack.pop() !== name) return `unbalanced </${name}> at ${match.index}`;
    } else if (selfClosing !== '/') stack.push(name);
  }
  return stack.length === 0 ? null : `unclosed <${stack.join('><')}>`;
}

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe.each(Object.keys(plots))('plot %s', (name) => {
  test('renders valid SVG with its texts and a PNG', async () => {
    const { spec, texts } = plots[name]!;
    const { svg, png } = await renderPlot(spec);
    expect(xmlProblem(svg)).toBeNull();
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of texts) expect(svg).toContain(text);
    expect(Array.from(png.subarray(0, 8))).toEqual(pngSignature);
    expect(png.byteLength).toBeGreaterThan(5000);
  });
});

test('writePlots writes an svg and a png per plot, and nothing else', async () => {
  const keep = process.env.MENTALLAM_PLOT_DIR;
  const dir = keep ?? (await mkdtemp(join(tmpdir(), 'mentallam-plots-')));
  try {
    const specs = Object.fromEntries(Object.entries(plots).map(([n, p]) => [n, p.spec]));
    const written = await writePlots(join(dir, 'fold_0'), specs);
    expect(written).toHaveLength(12);
    const files = (await readdir(join(dir, 'fold_0'))).sort();
    expect(files).toEqual(
      Object.keys(plots)
        .flatMap((n) => [`${n}.png`, `${n}.svg`])
        .sort(),
    );
    const png = await readFile(join(dir, 'fold_0', 'roc_curve.png'));
    expect(Array.from(png.subarray(0, 8))).toEqual(pngSignature);
  } finally {
    if (keep === undefined) await rm(dir, { recursive: true, force: true });
  }
});

test('writePlots refuses a name that is not a plain file name', async () => {
  await expect(writePlots(tmpdir(), { '../escape': plots.roc_curve!.spec })).rejects.toThrow(
    /plain file name/,
  );
});

test('the XML check catches broken markup', () => {
  expect(xmlProblem('<svg><g></svg>')).toMatch(/unbalanced/);
  expect(xmlProblem('<svg a=1/>')).toMatch(/stray/);
  expect(xmlProblem('<svg>a & b</svg>')).toMatch(/stray/);
  expect(xmlProblem('<svg><text x="1">a &lt; b</text><path d="M0"/></svg>')).toBeNull();
});

test('a one-class ROC curve (NaN rates) still renders', async () => {
  const curve = rocCurve([0, 0, 0], [0.1, 0.5, 0.9]);
  const { svg } = await renderPlot(plotRocCurve(curve, { rocAuc: NaN }));
  expect(svg).toContain('AUC = undefined');
});
