/**
 * summary.md and report.html. The HTML page is self-contained: plots are inline SVG, styles are
 * inline, and it names no URL at all (run links live in summary.md), so it renders offline and
 * loads nothing when opened from MLflow's artifact viewer or a mail attachment.
 */
import { tableMetricKeys, type MetricSummary } from '../metrics/index.js';
import type { AggregateSummary } from './summary.js';

export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toFixed(digits);
}

function meanStd(summary: MetricSummary | undefined): string {
  if (summary === undefined) return 'n/a';
  const std = Number.isFinite(summary.std) ? ` ± ${formatNumber(summary.std)}` : ' (1 fold)';
  return `${formatNumber(summary.mean)}${std}`;
}

function foldMetric(summary: AggregateSummary, fold: number, key: string): number | undefined {
  return summary.folds.find((f) => f.fold === fold)?.testMetrics[key];
}

function shownMetrics(summary: AggregateSummary): string[] {
  return tableMetricKeys.filter((key) => summary.acrossFolds[key] !== undefined);
}

function escapeMd(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** Markdown tables: per-fold metrics with mean ± std, per criterion, thresholds, run links. */
export function renderSummaryMarkdown(summary: AggregateSummary): string {
  const lines: string[] = [];
  const metrics = shownMetrics(summary);
  const folds = summary.foldsAggregated;
  lines.push(`# Cross-validation summary`, '');
  lines.push(`- Parent run: \`${summary.parentRunId ?? 'none (MLflow disabled)'}\``);
  lines.push(`- Dataset hash: \`${summary.datasetHash ?? 'unknown'}\``);
  lines.push(`- Config hash: \`${summary.configHash}\``);
  lines.push(`- Folds aggregated: ${folds.join(', ')}${summary.complete ? '' : ' (INCOMPLETE)'}`);
  lines.push(`- Aggregated at: ${summary.aggregatedAt}`);
  const best = summary.bestFoldSelection;
  lines.push(
    best === null
      ? '- Best fold: none (no validation score)'
      : `- Best fold: **${best.fold}**, picked on its VALIDATION ${best.metric} (${best.mode}) = ${formatNumber(best.validationValue)}; its test value ${formatNumber(best.testValue)} was not used to pick it`,
  );
  lines.push('');
  lines.push('## Headline');
  lines.push('');
  lines.push('| | pooled out-of-fold | mean ± std over folds |');
  lines.push('|---|---|---|');
  for (const [label, pooledKey, foldKey] of [
    ['F1', 'f1', 'test_f1'],
    ['macro-F1', 'macro_f1', 'test_macro_f1'],
    ['precision', 'precision', 'test_precision'],
    ['recall', 'recall', 'test_recall'],
    ['AUPRC', 'average_precision', 'test_average_precision'],
    ['ROC-AUC', 'roc_auc', 'test_roc_auc'],
  ] as const)
    lines.push(
      `| ${label} | ${formatNumber(summary.pooled[pooledKey])} | ${meanStd(summary.acrossFolds[foldKey])} |`,
    );
  lines.push('');
  lines.push(
    'Pooled: the test predictions of all folds together, each fold classified at its own per-criterion thresholds. Std is the sample standard deviation (ddof 1).',
  );
  lines.push('');
  lines.push('## Test metrics per fold');
  lines.push('');
  lines.push(`| fold | ${metrics.map((m) => m.replace(/^test_/, '')).join(' | ')} |`);
  lines.push(`|---|${metrics.map(() => '---').join('|')}|`);
  for (const fold of folds)
    lines.push(
      `| ${fold} | ${metrics.map((m) => formatNumber(foldMetric(summary, fold, m))).join(' | ')} |`,
    );
  lines.push(
    `| **mean ± std** | ${metrics.map((m) => meanStd(summary.acrossFolds[m])).join(' | ')} |`,
  );
  lines.push(
    `| min | ${metrics.map((m) => formatNumber(summary.acrossFolds[m]?.min)).join(' | ')} |`,
  );
  lines.push(
    `| max | ${metrics.map((m) => formatNumber(summary.acrossFolds[m]?.max)).join(' | ')} |`,
  );
  lines.push('');
  lines.push('## Per criterion (pooled out-of-fold)');
  lines.push('');
  lines.push('| criterion | F1 | precision | recall | AUPRC | support (positives / pairs) |');
  lines.push('|---|---|---|---|---|---|');
  for (const row of summary.perCriterion)
    lines.push(
      `| ${escapeMd(row.criterion)} | ${formatNumber(row.f1)} | ${formatNumber(row.precision)} | ${formatNumber(row.recall)} | ${formatNumber(row.averagePrecision)} | ${row.support} / ${row.n} |`,
    );
  lines.push('');
  lines.push("## Thresholds (tuned on each fold's inner validation split)");
  lines.push('');
  const criteria = Object.keys(summary.thresholdSummary.perCriterion);
  lines.push(`| fold | global | ${criteria.join(' | ')} | fell back to global |`);
  lines.push(`|---|---|${criteria.map(() => '---').join('|')}|---|`);
  for (const entry of summary.thresholdSummary.perFold)
    lines.push(
      `| ${entry.fold} | ${formatNumber(entry.global, 3)} | ${criteria.map((id) => formatNumber(entry.perCriterion[id], 3)).join(' | ')} | ${entry.fellBack.join(', ') || '-'} |`,
    );
  const t = summary.thresholdSummary;
  lines.push(
    `| **mean ± std** | ${meanStd(t.global)} | ${criteria.map((id) => meanStd(t.perCriterion[id])).join(' | ')} | |`,
  );
  lines.push('');
  lines.push(
    `Calibration (pooled, 10 bins): ECE = ${formatNumber(summary.calibration.ece)} over ${summary.calibration.n} pairs.`,
  );
  lines.push('');
  lines.push('## Fold runs');
  lines.push('');
  for (const child of summary.childRuns)
    lines.push(
      child.url === null
        ? `- fold ${child.fold}: ${child.runId === null ? 'no MLflow run' : `run \`${child.runId}\``}`
        : `- fold ${child.fold}: [${child.runId}](${child.url})`,
    );
  lines.push('');
  lines.push('## Checks');
  lines.push('');
  lines.push(
    `- Fold metrics reproduced from predictions.json: ${summary.checks.foldMetricsReproduced ? 'yes' : 'NO'}`,
  );
  lines.push(`- Pairs in several test folds: ${summary.checks.pairsInSeveralTestFolds}`);
  lines.push(`- Posts in several test folds: ${summary.checks.postsInSeveralTestFolds}`);
  if (summary.warnings.length > 0) {
    lines.push('');
    lines.push('### Warnings');
    lines.push('');
    for (const warning of summary.warnings) lines.push(`- ${warning}`);
  }
  lines.push('');
  return lines.join('\n');
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * An SVG from vega made fit for inline HTML: HTML5 puts <svg> in the SVG namespace by itself,
 * so the xmlns attributes (the only URLs vega writes) are dropped.
 */
export function inlineSvg(svg: string): string {
  return svg
    .replace(/^<\?xml[^>]*>\s*/, '')
    .replace(/\s+xmlns(:\w+)?="[^"]*"/g, '')
    .replace(/\s+version="1\.1"/, '');
}

export interface ReportPlot {
  title: string;
  svg: string;
  caption: string;
}

function table(headers: string[], rows: string[][], footer: string[][] = []): string {
  const th = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = (cells: string[], cls = '') =>
    `<tr${cls === '' ? '' : ` class="${cls}"`}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
  return `<table><thead><tr>${th}</tr></thead><tbody>${rows.map((r) => tr(r)).join('')}${footer.map((r) => tr(r, 'summary')).join('')}</tbody></table>`;
}

/** One HTML page: headline, tables, inline SVG plots, checks. No script, no external resource. */
export function renderReportHtml(summary: AggregateSummary, plots: readonly ReportPlot[]): string {
  const metrics = shownMetrics(summary);
  const best = summary.bestFoldSelection;
  const criteria = Object.keys(summary.thresholdSummary.perCriterion);
  const t = summary.thresholdSummary;
  const facts: [string, string][] = [
    ['Parent run', summary.parentRunId ?? 'none (MLflow disabled)'],
    ['Dataset hash', summary.datasetHash ?? 'unknown'],
    ['Config hash', summary.configHash],
    ['Folds', `${summary.foldsAggregated.join(', ')}${summary.complete ? '' : ' (INCOMPLETE)'}`],
    [
      'Best fold',
      best === null
        ? 'none'
        : `${best.fold} (validation ${best.metric} ${best.mode} = ${formatNumber(best.validationValue)}; picked on validation, not on test)`,
    ],
    [
      'Pooled F1 / macro-F1',
      `${formatNumber(summary.pooled.f1)} / ${formatNumber(summary.pooled.macro_f1)}`,
    ],
    ['Fold F1 mean ± std', meanStd(summary.acrossFolds.test_f1)],
    ['Aggregated at', summary.aggregatedAt],
  ];
  const sections: string[] = [];
  sections.push(
    `<dl>${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`,
  );
  sections.push('<h2>Test metrics per fold</h2>');
  sections.push(
    table(
      ['fold', ...metrics.map((m) => m.replace(/^test_/, ''))],
      summary.foldsAggregated.map((fold) => [
        String(fold),
        ...metrics.map((m) => formatNumber(foldMetric(summary, fold, m))),
      ]),
      [
        ['mean ± std', ...metrics.map((m) => meanStd(summary.acrossFolds[m]))],
        ['min', ...metrics.map((m) => formatNumber(summary.acrossFolds[m]?.min))],
        ['max', ...metrics.map((m) => formatNumber(summary.acrossFolds[m]?.max))],
      ],
    ),
  );
  sections.push('<h2>Plots</h2><div class="plots">');
  for (const plot of plots)
    sections.push(
      `<figure><div class="svg">${inlineSvg(plot.svg)}</div><figcaption><b>${escapeHtml(plot.title)}.</b> ${escapeHtml(plot.caption)}</figcaption></figure>`,
    );
  sections.push('</div>');
  sections.push('<h2>Per criterion (pooled out-of-fold)</h2>');
  sections.push(
    table(
      ['criterion', 'F1', 'precision', 'recall', 'AUPRC', 'positives', 'pairs'],
      summary.perCriterion.map((row) => [
        row.criterion,
        formatNumber(row.f1),
        formatNumber(row.precision),
        formatNumber(row.recall),
        formatNumber(row.averagePrecision),
        String(row.support),
        String(row.n),
      ]),
    ),
  );
  sections.push("<h2>Thresholds (tuned on each fold's inner validation split)</h2>");
  sections.push(
    table(
      ['fold', 'global', ...criteria, 'fell back'],
      t.perFold.map((entry) => [
        String(entry.fold),
        formatNumber(entry.global, 3),
        ...criteria.map((id) => formatNumber(entry.perCriterion[id], 3)),
        entry.fellBack.join(', ') || '-',
      ]),
      [['mean ± std', meanStd(t.global), ...criteria.map((id) => meanStd(t.perCriterion[id])), '']],
    ),
  );
  sections.push('<h2>Fold runs</h2>');
  sections.push(
    table(
      ['fold', 'MLflow run id'],
      summary.childRuns.map((c) => [String(c.fold), c.runId ?? 'none']),
    ),
  );
  sections.push(
    '<p class="note">Links to the runs are in summary.md; this page loads nothing from the network.</p>',
  );
  sections.push('<h2>Checks</h2><ul>');
  sections.push(
    `<li>Fold metrics reproduced from predictions.json: ${summary.checks.foldMetricsReproduced ? 'yes' : '<b>NO</b>'}</li>`,
  );
  sections.push(`<li>Pairs in several test folds: ${summary.checks.pairsInSeveralTestFolds}</li>`);
  sections.push(`<li>Posts in several test folds: ${summary.checks.postsInSeveralTestFolds}</li>`);
  for (const warning of summary.warnings)
    sections.push(`<li class="warn">${escapeHtml(warning)}</li>`);
  sections.push('</ul>');
  const style = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dt{font-weight:600}dd{margin:0;font-family:ui-monospace,monospace;font-size:.92em}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0;overflow-x:auto;display:block}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}tr.summary td{font-weight:600;background:#fafafa}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;border:1px solid #eee;padding:8px;background:#fff}
figcaption{font-size:.85em;max-width:560px;color:#444}.note{font-size:.85em;color:#666}.warn{color:#a33}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mentallam cross-validation report ${escapeHtml(summary.parentRunId ?? '')}</title>
<style>${style}</style>
</head>
<body>
<h1>mentallam cross-validation report</h1>
${sections.join('\n')}
</body>
</html>
`;
}
