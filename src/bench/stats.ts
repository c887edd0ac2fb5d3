// Latency summaries, the text histogram and the vega-lite histogram spec of the bench. Pure
// functions of the measured milliseconds, so the maths is tested without a model or a clock.
import { percentile } from '../data/index.js';
import type { PlotSpec } from '../metrics/index.js';

export interface LatencySummary {
  /** Input length in tokens. */
  length: number;
  runs: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
  /** Every timed run, in the order measured (ms). */
  samples: number[];
}

/** Percentiles by linear interpolation between order statistics (numpy's default). */
export function summarizeLatency(length: number, samples: readonly number[]): LatencySummary {
  if (samples.length === 0) throw new RangeError(`no timed runs for length ${length}`);
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    length,
    runs: samples.length,
    min: sorted[0]!,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: samples.reduce((s, v) => s + v, 0) / samples.length,
    max: sorted[sorted.length - 1]!,
    samples: [...samples],
  };
}

export interface HistogramBin {
  from: number;
  to: number;
  count: number;
}

/** `bins` equal-width bins over [min, max]; the last bin includes max. One bin when all are equal. */
export function histogram(samples: readonly number[], bins = 10): HistogramBin[] {
  if (samples.length === 0) return [];
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  if (max === min) return [{ from: min, to: max, count: samples.length }];
  const width = (max - min) / bins;
  const out = Array.from({ length: bins }, (_, i) => ({
    from: min + i * width,
    to: i === bins - 1 ? max : min + (i + 1) * width,
    count: 0,
  }));
  for (const v of samples) out[Math.min(bins - 1, Math.floor((v - min) / width))]!.count += 1;
  return out;
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Per length: the figures on one line, then a bar per histogram bin (for a terminal). */
export function formatLatencyReport(summaries: readonly LatencySummary[], width = 40): string {
  const lines: string[] = [];
  for (const s of summaries) {
    lines.push(
      `${s.length} tokens, ${s.runs} runs: p50 ${ms(s.p50)} ms  p95 ${ms(s.p95)} ms  ` +
        `p99 ${ms(s.p99)} ms  mean ${ms(s.mean)} ms  max ${ms(s.max)} ms`,
    );
    const bins = histogram(s.samples);
    const top = Math.max(...bins.map((b) => b.count));
    const labels = bins.map((b) => `${ms(b.from)}-${ms(b.to)} ms`);
    const pad = Math.max(...labels.map((l) => l.length));
    bins.forEach((b, i) => {
      const bar = '#'.repeat(Math.round((b.count / top) * width));
      lines.push(`  ${labels[i]!.padStart(pad)} |${bar} ${b.count}`);
    });
  }
  return `${lines.join('\n')}\n`;
}

/** A histogram per input length, stacked vertically, with the p95 limit as a rule. */
export function latencyHistogramSpec(
  summaries: readonly LatencySummary[],
  options: { maxP95Ms?: number; title?: string } = {},
): PlotSpec {
  const values = summaries.flatMap((s) =>
    s.samples.map((v) => ({ length: `${s.length} tokens`, order: s.length, ms: v })),
  );
  const histogramLayer = {
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'ms', type: 'quantitative', bin: { maxbins: 30 }, title: 'latency (ms)' },
      y: { aggregate: 'count', type: 'quantitative', title: 'runs' },
    },
  };
  const spec: Record<string, unknown> = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: options.title ?? 'CPU latency per input length',
    data: { values },
    facet: {
      row: { field: 'length', type: 'nominal', sort: { field: 'order' }, title: null },
    },
    spec: {
      width: 480,
      height: 120,
      layer:
        options.maxP95Ms !== undefined
          ? [
              histogramLayer,
              {
                mark: { type: 'rule', color: 'firebrick', strokeDash: [4, 3] },
                encoding: { x: { datum: options.maxP95Ms, type: 'quantitative' } },
              },
            ]
          : [histogramLayer],
    },
    // One latency axis for every length, so the panels compare at a glance and share the limit.
    resolve: { scale: { x: 'shared', y: 'independent' } },
  };
  return spec as unknown as PlotSpec;
}
