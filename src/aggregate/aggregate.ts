/**
 * `aggregate()`: fold artifacts (MLflow child runs, or a run directory) -> aggregate.json,
 * summary.md, thresholds.json, report.html and run-level plots, written through the run store
 * (never over the training's summary.json) and attached to the parent run with
 * metric_mean_* / metric_std_* / pooled_* metrics.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger, isNetworkError, type Logger } from '../infra/index.js';
import { plotPerCriterionF1, writePlots, type PlotSpec } from '../metrics/index.js';
import { RunStore } from '../run/index.js';
import {
  MlflowApiError,
  resolveTracking,
  type MlflowClient,
  type ResolvedTracking,
} from '../tracking/index.js';
import { plotCalibration, plotFoldMetricBars, plotFoldPrCurves } from './plots.js';
import { renderReportHtml, renderSummaryMarkdown, type ReportPlot } from './report.js';
import { findRunDirectory, readFromMlflow, readRunDirectory } from './sources.js';
import {
  buildInferenceThresholds,
  buildSummary,
  type AggregateSummary,
  type InferenceThresholds,
} from './summary.js';
import type { RunSource } from './types.js';

export interface AggregateOptions {
  /** A parent run id, or a training run directory. */
  run: string;
  /** Default: MLFLOW_TRACKING_URI, then the run's config, then a local server over <cwd>/mlruns. */
  trackingUri?: string;
  /** Log metric_mean_* / metric_std_* / pooled_* and attach the files to the parent run (default true). */
  logToMlflow?: boolean;
  /** Where the files go; default the run directory, else <cwd>/outputs/aggregate/<parent run id>. */
  outDir?: string;
  logger?: Logger;
  /** Base of relative paths (default the working directory). */
  cwd?: string;
  /** Searched for the run directory when MLflow cannot be reached (default <cwd>/outputs). */
  searchRoot?: string;
  env?: NodeJS.ProcessEnv;
  /** The aggregation time written to the files (tests pin it). */
  now?: Date;
}

export interface AggregateFiles {
  /** aggregate.json (the training's summary.json beside it is left as it was). */
  aggregateJson: string;
  summaryMd: string;
  thresholdsJson: string;
  reportHtml: string;
  plots: string[];
}

export interface AggregateResult {
  parentRunId: string | null;
  outDir: string;
  summary: AggregateSummary;
  /** The run-level thresholds.json (fold_mean). */
  thresholds: InferenceThresholds;
  files: AggregateFiles;
  loggedToMlflow: boolean;
  /** Where the fold artifacts were read from. */
  source: RunSource['kind'];
}

/** `run` names neither a run directory nor (by its form) an MLflow run id. */
export class RunReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunReferenceError';
  }
}

/**
 * A run directory, or a parent run id to look up in MLflow. Decided from the reference alone, so
 * a path that is not a run is answered at once, before an MLflow server is contacted or started:
 * an existing path must be a run directory, and a reference with a path's form (a separator, a
 * leading `.` or `~`) that does not exist is no run id either.
 */
export function classifyRunReference(
  run: string,
  cwd: string,
): { kind: 'run-dir'; dir: string } | { kind: 'run-id'; runId: string } {
  const path = resolve(cwd, run);
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) {
      throw new RunReferenceError(`--run ${path} is a file, not a run directory`);
    }
    if (!new RunStore(path).config.exists()) {
      throw new RunReferenceError(
        `--run ${path} is not a run directory: it has no config.yaml (give a training run's directory or its MLflow parent run id)`,
      );
    }
    return { kind: 'run-dir', dir: path };
  }
  const runId = run.trim();
  if (runId === '' || /[/\\]/.test(runId) || /^[.~]/.test(runId)) {
    throw new RunReferenceError(
      `--run ${path} does not exist: not a run directory, and not an MLflow run id`,
    );
  }
  return { kind: 'run-id', runId };
}

/** MLflow did not answer /health, or its local server could not be started. */
export class TrackingUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrackingUnreachableError';
  }
}

/** A failure that means "MLflow is not there" rather than "MLflow said no". */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof TrackingUnreachableError || isNetworkError(error)) return true;
  if (error instanceof MlflowApiError) return [408, 429, 502, 503, 504].includes(error.status);
  return false;
}

/** Connects to MLflow and checks /health; throws a clear error when it is not reachable. */
export async function connectTracking(options: {
  trackingUri: string | undefined;
  cwd: string;
  logger: Logger;
  env: NodeJS.ProcessEnv;
}): Promise<ResolvedTracking> {
  let tracking: ResolvedTracking | null;
  try {
    tracking = await resolveTracking({
      enabled: true,
      ...(options.trackingUri === undefined ? {} : { trackingUri: options.trackingUri }),
      // The same place the training keeps its local server, so its runs are found.
      workDir: resolve(options.cwd, 'mlruns'),
      logger: options.logger,
      env: options.env,
    });
  } catch (error) {
    // The local server did not start (no mlflow binary, port, migrations): MLflow is not there.
    if (error instanceof Error && /local MLflow server/.test(error.message))
      throw new TrackingUnreachableError(error.message, { cause: error });
    throw error;
  }
  if (tracking === null) throw new Error('MLflow tracking is disabled');
  if (!(await tracking.client.health(5_000))) {
    await tracking.close();
    throw new TrackingUnreachableError(
      `MLflow at ${tracking.uri} is not reachable (GET /health failed)`,
    );
  }
  return tracking;
}

function preferredTrackingUri(
  options: AggregateOptions,
  env: NodeJS.ProcessEnv,
  fromConfig: string | null,
): string | undefined {
  const fromEnv = env.MLFLOW_TRACKING_URI?.trim();
  return options.trackingUri ?? (fromEnv ? fromEnv : undefined) ?? fromConfig ?? undefined;
}

async function renderPlots(
  summary: AggregateSummary,
  source: RunSource,
  dir: string,
): Promise<{ plots: ReportPlot[]; files: string[] }> {
  const folds = [...source.folds].sort((a, b) => a.fold - b.fold);
  const specs: { name: string; title: string; caption: string; spec: PlotSpec }[] = [
    {
      name: 'cv_fold_metrics',
      title: 'Test metrics per fold',
      caption:
        'Bars are the mean over folds, whiskers ± one sample standard deviation, dots the individual folds (each at its own tuned thresholds).',
      spec: plotFoldMetricBars(folds, summary.acrossFolds),
    },
    {
      name: 'cv_pr_curves',
      title: 'Precision-recall curves',
      caption: "Each fold's held-out test predictions; threshold-free.",
      spec: plotFoldPrCurves(folds),
    },
    {
      name: 'cv_per_criterion_f1',
      title: 'F1 per criterion',
      caption:
        'Pooled out-of-fold predictions, each fold at its own per-criterion thresholds; n+ is the number of positive pairs.',
      spec: plotPerCriterionF1(
        summary.perCriterion.map((row) => ({
          criterion: row.criterion,
          f1: row.f1,
          support: row.support,
        })),
        { macroF1: summary.pooled.macro_f1, title: 'Pooled out-of-fold F1 per criterion' },
      ),
    },
    {
      name: 'cv_calibration',
      title: 'Reliability diagram',
      caption:
        'Pooled test probabilities in 10 equal-width bins: fraction of positive pairs against the mean predicted probability (labels give the pairs per bin).',
      spec: plotCalibration(summary.calibration),
    },
  ];
  const files = await writePlots(dir, Object.fromEntries(specs.map((p) => [p.name, p.spec])));
  const plots: ReportPlot[] = [];
  for (const { name, title, caption } of specs) {
    plots.push({ title, caption, svg: await readFile(join(dir, `${name}.svg`), 'utf8') });
  }
  return { plots, files };
}

/** Where to write when the artifacts came from MLflow: the training's run dir if it is here. */
async function defaultOutDir(source: RunSource, cwd: string): Promise<string> {
  const runDir = source.trainingSummary?.runDir;
  if (runDir !== undefined) {
    try {
      const local = await new RunStore(runDir).summary.readIfExists();
      if (local !== null && local.parentRunId === source.parentRunId) return runDir;
    } catch {
      // Not readable: do not write into it.
    }
  }
  return resolve(cwd, 'outputs', 'aggregate', source.parentRunId ?? 'no-parent-run');
}

/** The metrics logged to the parent run: every across-fold mean and std, and the pooled numbers. */
export function parentRunMetrics(summary: AggregateSummary): { key: string; value: number }[] {
  return [
    ...Object.entries(summary.acrossFolds).flatMap(([key, stats]) => [
      { key: `metric_mean_${key}`, value: stats.mean },
      { key: `metric_std_${key}`, value: stats.std },
    ]),
    ...Object.entries(summary.pooled).map(([key, value]) => ({ key: `pooled_${key}`, value })),
    { key: 'aggregate_folds', value: summary.foldsAggregated.length },
    ...(summary.bestFold === null ? [] : [{ key: 'best_fold', value: summary.bestFold }]),
    { key: 'pooled_ece', value: summary.calibration.ece },
  ];
}

async function logToParent(
  client: MlflowClient,
  parentRunId: string,
  summary: AggregateSummary,
  files: AggregateFiles,
): Promise<void> {
  const tags: Record<string, string> = {
    'mentallam.config_hash': summary.configHash,
    'mentallam.aggregated_at': summary.aggregatedAt,
    'mentallam.aggregate_folds': summary.foldsAggregated.join(','),
  };
  const best = summary.bestFoldSelection;
  if (best !== null) {
    tags['mentallam.best_fold'] = String(best.fold);
    if (best.runId !== null) tags['mentallam.best_fold_run_id'] = best.runId;
  }
  await client.logBatch(parentRunId, { metrics: parentRunMetrics(summary), tags });
  await client.uploadArtifact(parentRunId, files.aggregateJson);
  await client.uploadArtifact(parentRunId, files.summaryMd);
  await client.uploadArtifact(parentRunId, files.thresholdsJson);
  await client.uploadArtifact(parentRunId, files.reportHtml);
  for (const plot of files.plots) await client.uploadArtifact(parentRunId, plot, 'plots');
}

/**
 * Aggregates the folds of one cross-validation run. With a run directory the folds are read from
 * disk; with a parent run id they are fetched from MLflow, and when MLflow cannot be reached the
 * run directory naming that parent is looked for under `searchRoot`.
 */
export async function aggregate(options: AggregateOptions): Promise<AggregateResult> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ env });
  const logToMlflow = options.logToMlflow ?? true;
  let tracking: ResolvedTracking | null = null;
  let downloadDir: string | null = null;
  try {
    let source: RunSource;
    const warnings: string[] = [];
    const reference = classifyRunReference(options.run, cwd);
    if (reference.kind === 'run-dir') {
      source = await readRunDirectory(reference.dir);
      if (logToMlflow && source.parentRunId !== null) {
        try {
          tracking = await connectTracking({
            trackingUri: preferredTrackingUri(options, env, source.config.trackingUri),
            cwd,
            logger,
            env,
          });
          const parent = await tracking.client.getRun(source.parentRunId);
          source = {
            ...source,
            experimentId: parent.info.experimentId,
            trackingUri: tracking.client.trackingUri,
          };
        } catch (error) {
          if (!isUnreachable(error)) throw error;
          warnings.push(
            `MLflow not reachable (${(error as Error).message}): files written locally, nothing logged to run ${source.parentRunId}`,
          );
          await tracking?.close();
          tracking = null;
        }
      } else if (logToMlflow) {
        warnings.push('the run has no MLflow parent run (tracking was disabled): nothing logged');
      }
    } else {
      const parentRunId = reference.runId;
      try {
        tracking = await connectTracking({
          trackingUri: preferredTrackingUri(options, env, null),
          cwd,
          logger,
          env,
        });
        downloadDir = await mkdtemp(join(tmpdir(), 'mentallam-aggregate-'));
        source = await readFromMlflow(tracking.client, parentRunId, downloadDir, logger);
      } catch (error) {
        const notFound = error instanceof MlflowApiError && error.status === 404;
        if (!isUnreachable(error) && !notFound) throw error;
        const searchRoot = resolve(cwd, options.searchRoot ?? 'outputs');
        const runDir = await findRunDirectory(searchRoot, parentRunId);
        if (runDir === null)
          throw new Error(
            `Cannot aggregate run ${parentRunId}: ${(error as Error).message}; and no run directory under ${searchRoot} has a summary.json naming it`,
            { cause: error },
          );
        logger.warn('MLflow unavailable for this run: reading the run directory instead', {
          runDir,
          reason: (error as Error).message,
        });
        warnings.push(`read from ${runDir}: MLflow unavailable (${(error as Error).message})`);
        await tracking?.close();
        tracking = null;
        source = await readRunDirectory(runDir);
      }
    }
    source = { ...source, warnings: [...source.warnings, ...warnings] };

    const summary = buildSummary(source, options.now);
    const thresholds = buildInferenceThresholds(summary, source, 'fold_mean')!;
    for (const warning of summary.warnings) logger.warn(warning);
    const out = await new RunStore(
      resolve(cwd, options.outDir ?? source.runDir ?? (await defaultOutDir(source, cwd))),
    ).create();
    const outDir = out.dir;
    const { plots, files: plotFiles } = await renderPlots(summary, source, out.plotsDir);
    const files: AggregateFiles = {
      aggregateJson: out.aggregate.path,
      summaryMd: out.summaryMarkdown.path,
      thresholdsJson: out.thresholds.path,
      reportHtml: out.report.path,
      plots: plotFiles,
    };
    await out.aggregate.write(summary);
    await out.summaryMarkdown.write(renderSummaryMarkdown(summary));
    await out.thresholds.write(thresholds);
    await out.report.write(renderReportHtml(summary, plots));

    let loggedToMlflow = false;
    if (logToMlflow && tracking !== null && source.parentRunId !== null) {
      try {
        await logToParent(tracking.client, source.parentRunId, summary, files);
        loggedToMlflow = true;
      } catch (error) {
        if (!isUnreachable(error)) throw error;
        logger.warn('MLflow went away while logging the aggregate: files are written locally', {
          error: (error as Error).message,
        });
      }
    }
    logger.info('aggregated', {
      parentRunId: source.parentRunId,
      folds: summary.foldsAggregated,
      outDir,
      loggedToMlflow,
    });
    return {
      parentRunId: source.parentRunId,
      outDir,
      summary,
      thresholds,
      files,
      loggedToMlflow,
      source: source.kind,
    };
  } finally {
    await tracking?.close();
    if (downloadDir !== null) await rm(downloadDir, { recursive: true, force: true });
  }
}
