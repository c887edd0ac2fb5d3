/**
 * Reading the fold artifacts: from a training run directory, or from MLflow (the parent run's
 * children, found by their `mlflow.parentRunId` tag across all pages, and their artifacts).
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from '../../infra/index.js';
import type { MlflowClient, Run } from '../../tracking/index.js';
import { MlflowApiError } from '../../tracking/index.js';
import { parseConfigView } from './compute.js';
import type {
  FoldArtifacts,
  FoldMetricsFile,
  FoldThresholdsFile,
  PredictionRow,
  PredictionsFile,
  RunSource,
} from './types.js';

export const foldTag = 'mentallam.fold';
export const datasetHashTag = 'mentallam.dataset_hash';

export function isRunDirectory(run: string): boolean {
  return existsSync(run) && statSync(run).isDirectory();
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(`${path} is missing`, { cause: error });
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function fail(where: string, what: string): never {
  throw new Error(`${where}: ${what}`);
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(where, 'expected a JSON object');
  return value as Record<string, unknown>;
}

function rowsOf(value: unknown, where: string): PredictionRow[] {
  if (!Array.isArray(value))
    fail(where, 'expected an array of {postId, criterionId, label, score}');
  return value.map((item, i) => {
    const row = asRecord(item, `${where}[${i}]`);
    const { postId, criterionId, label, score } = row;
    if (typeof postId !== 'string' && typeof postId !== 'number')
      fail(`${where}[${i}]`, 'postId is missing');
    if (typeof criterionId !== 'string') fail(`${where}[${i}]`, 'criterionId is missing');
    if (label !== 0 && label !== 1)
      fail(`${where}[${i}]`, `label is ${String(label)}; expected 0 or 1`);
    if (typeof score !== 'number' || !(score >= 0 && score <= 1))
      fail(`${where}[${i}]`, `score is ${String(score)}; expected a probability in [0, 1]`);
    return { postId: String(postId), criterionId, label, score };
  });
}

/** Validates a parsed predictions.json (rows carry identity and scores only). */
export function parsePredictions(value: unknown, where: string): PredictionsFile {
  const record = asRecord(value, where);
  return {
    fold: typeof record.fold === 'number' ? record.fold : Number.NaN,
    test: rowsOf(record.test, `${where} test`),
    validation:
      record.validation === undefined ? [] : rowsOf(record.validation, `${where} validation`),
  };
}

export function parseFoldThresholds(value: unknown, where: string): FoldThresholdsFile {
  const record = asRecord(value, where);
  if (typeof record.global !== 'number') fail(where, 'global threshold is missing');
  const perCriterion = asRecord(record.perCriterion ?? {}, `${where} perCriterion`);
  for (const [id, threshold] of Object.entries(perCriterion))
    if (typeof threshold !== 'number') fail(where, `perCriterion.${id} is not a number`);
  return {
    ...(record as object),
    global: record.global,
    perCriterion: perCriterion as Record<string, number>,
    fellBack: Array.isArray(record.fellBack) ? (record.fellBack as string[]) : [],
    fold: typeof record.fold === 'number' ? record.fold : Number.NaN,
  } as FoldThresholdsFile;
}

export function parseFoldMetrics(value: unknown, where: string): FoldMetricsFile {
  const record = asRecord(value, where);
  const test = asRecord(record.test ?? {}, `${where} test`);
  const numeric: Record<string, number> = {};
  for (const [key, metric] of Object.entries(test)) {
    // JSON has no NaN: the training's writer turns NaN (e.g. ROC-AUC of a one-class fold) into null.
    if (typeof metric === 'number') numeric[key] = metric;
    else if (metric === null) numeric[key] = Number.NaN;
  }
  return { ...(record as object), test: numeric } as FoldMetricsFile;
}

async function readFoldDir(
  dir: string,
  fold: number,
  runId: string | null,
  status?: string,
): Promise<FoldArtifacts> {
  const predictions = parsePredictions(
    await readJson(join(dir, 'predictions.json')),
    `${dir}/predictions.json`,
  );
  const thresholds = parseFoldThresholds(
    await readJson(join(dir, 'thresholds.json')),
    `${dir}/thresholds.json`,
  );
  const metrics = parseFoldMetrics(
    await readJson(join(dir, 'metrics.json')),
    `${dir}/metrics.json`,
  );
  const adapterDir = join(dir, 'best_adapter');
  return {
    fold,
    runId,
    ...(status === undefined ? {} : { status }),
    predictions,
    thresholds,
    metrics,
    bestAdapterDir: existsSync(adapterDir) ? adapterDir : null,
  };
}

async function readOptionalJson(path: string): Promise<Record<string, unknown> | null> {
  if (!existsSync(path)) return null;
  return asRecord(await readJson(path), path);
}

/** The folds of a training run directory: every `fold_{i}/` holding predictions.json. */
export async function readRunDirectory(runDir: string): Promise<RunSource> {
  const dir = resolve(runDir);
  const configPath = join(dir, 'config.yaml');
  if (!existsSync(configPath))
    throw new Error(`${dir} is not a mentallam run directory: config.yaml is missing`);
  const configYaml = await readFile(configPath, 'utf8');
  const config = parseConfigView(configYaml);
  const trainingSummary = await readOptionalJson(join(dir, 'summary.json'));
  const manifest = await readOptionalJson(join(dir, 'manifest.json'));
  const warnings: string[] = [];
  const summaryFolds = Array.isArray(trainingSummary?.folds)
    ? (trainingSummary.folds as { fold?: unknown; runId?: unknown }[])
    : [];
  const runIdOfFold = (fold: number): string | null => {
    const entry = summaryFolds.find((f) => f.fold === fold);
    return typeof entry?.runId === 'string' ? entry.runId : null;
  };
  const foldDirs = (await readdir(dir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && /^fold_\d+$/.test(entry.name))
    .map((entry) => Number(entry.name.slice('fold_'.length)))
    .sort((a, b) => a - b);
  const folds: FoldArtifacts[] = [];
  for (const fold of foldDirs) {
    const foldDir = join(dir, `fold_${fold}`);
    if (!existsSync(join(foldDir, 'predictions.json'))) {
      warnings.push(`fold ${fold} has no predictions.json (unfinished?): left out`);
      continue;
    }
    folds.push(await readFoldDir(foldDir, fold, runIdOfFold(fold)));
  }
  const parentRunId =
    typeof trainingSummary?.parentRunId === 'string' ? trainingSummary.parentRunId : null;
  const datasetHash =
    typeof trainingSummary?.datasetHash === 'string'
      ? trainingSummary.datasetHash
      : typeof manifest?.hash === 'string'
        ? manifest.hash
        : (folds.find((f) => typeof f.thresholds.datasetHash === 'string')?.thresholds
            .datasetHash ?? null);
  return {
    kind: 'run-dir',
    runDir: dir,
    parentRunId,
    experimentId: null,
    trackingUri: null,
    configYaml,
    config,
    datasetHash,
    trainingSummary,
    folds,
    warnings,
  };
}

/** All child runs of `parent` (every page), de-duplicated by run id, oldest first. */
export async function childRuns(client: MlflowClient, parent: Run): Promise<Run[]> {
  const parentId = parent.info.runId.replace(/'/g, "\\'");
  return client.searchRuns({
    experimentIds: [parent.info.experimentId],
    filter: `tags.mlflow.parentRunId = '${parentId}'`,
    orderBy: ['attributes.start_time ASC'],
  });
}

function isMissingArtifact(error: unknown): boolean {
  return (
    error instanceof MlflowApiError &&
    (error.status === 404 || error.errorCode === 'RESOURCE_DOES_NOT_EXIST')
  );
}

/** Downloads one run artifact; undefined when the run has no such file. */
export async function downloadOptional(
  client: MlflowClient,
  runId: string,
  artifactPath: string,
  localPath: string,
): Promise<string | undefined> {
  try {
    await client.downloadArtifact(runId, artifactPath, localPath);
    return localPath;
  } catch (error) {
    if (isMissingArtifact(error)) return undefined;
    throw error;
  }
}

/**
 * The parent run's children and their artifacts, downloaded into `workDir/fold_{i}/` (and the
 * parent's config.yaml / summary.json into `workDir`). A fold with several child runs (a resumed
 * training) keeps its latest FINISHED one; children that did not finish are left out with a warning.
 */
export async function readFromMlflow(
  client: MlflowClient,
  parentRunId: string,
  workDir: string,
  logger?: Logger,
): Promise<RunSource> {
  const parent = await client.getRun(parentRunId);
  if (parent.tags['mlflow.parentRunId'] !== undefined)
    throw new Error(
      `Run ${parentRunId} is a child run (fold ${parent.tags[foldTag] ?? '?'}); give its parent ${parent.tags['mlflow.parentRunId']}`,
    );
  await mkdir(workDir, { recursive: true });
  const warnings: string[] = [];
  const configPath = await downloadOptional(
    client,
    parentRunId,
    'config.yaml',
    join(workDir, 'config.yaml'),
  );
  if (configPath === undefined)
    warnings.push(
      'the parent run has no config.yaml artifact: defaults used (best fold by validation f1, max)',
    );
  const configYaml = configPath === undefined ? '' : await readFile(configPath, 'utf8');
  // summary.json may be the training's or a previous aggregate's; its training keys are kept.
  const summaryPath = await downloadOptional(
    client,
    parentRunId,
    'summary.json',
    join(workDir, '.training-summary.json'),
  );
  const trainingSummary =
    summaryPath === undefined ? null : asRecord(await readJson(summaryPath), summaryPath);

  const children = await childRuns(client, parent);
  const byFold = new Map<number, Run[]>();
  for (const child of children) {
    const foldText = child.tags[foldTag] ?? /^fold_(\d+)$/.exec(child.info.runName)?.[1];
    const fold = Number(foldText);
    if (foldText === undefined || !Number.isInteger(fold)) {
      warnings.push(`child run ${child.info.runId} has no ${foldTag} tag: left out`);
      continue;
    }
    byFold.set(fold, [...(byFold.get(fold) ?? []), child]);
  }
  const folds: FoldArtifacts[] = [];
  for (const fold of [...byFold.keys()].sort((a, b) => a - b)) {
    const runs = byFold.get(fold)!;
    const finished = runs.filter((run) => run.info.status === 'FINISHED');
    const chosen = finished[finished.length - 1];
    if (chosen === undefined) {
      warnings.push(
        `fold ${fold}: no FINISHED child run (${runs.map((r) => `${r.info.runId} ${r.info.status}`).join(', ')}): left out`,
      );
      continue;
    }
    if (runs.length > 1)
      warnings.push(
        `fold ${fold} has ${runs.length} child runs; using the latest FINISHED one, ${chosen.info.runId}`,
      );
    const foldDir = join(workDir, `fold_${fold}`);
    const missing: string[] = [];
    for (const name of ['predictions.json', 'thresholds.json', 'metrics.json']) {
      const got = await downloadOptional(client, chosen.info.runId, name, join(foldDir, name));
      if (got === undefined) missing.push(name);
    }
    if (missing.length > 0) {
      warnings.push(
        `fold ${fold} (run ${chosen.info.runId}) lacks ${missing.join(', ')}: left out`,
      );
      continue;
    }
    logger?.debug('fold artifacts downloaded', { fold, runId: chosen.info.runId });
    const artifacts = await readFoldDir(foldDir, fold, chosen.info.runId, chosen.info.status);
    folds.push({ ...artifacts, bestAdapterDir: null });
  }
  const datasetHash =
    parent.tags[datasetHashTag] ??
    (typeof trainingSummary?.datasetHash === 'string' ? trainingSummary.datasetHash : null);
  return {
    kind: 'mlflow',
    runDir: null,
    parentRunId,
    experimentId: parent.info.experimentId,
    trackingUri: client.trackingUri,
    configYaml,
    config: parseConfigView(configYaml),
    datasetHash,
    trainingSummary,
    folds,
    warnings,
  };
}

/**
 * Looks below `root` (at most `depth` levels) for a run directory whose summary.json names
 * `parentRunId`: the fallback when MLflow cannot be reached.
 */
export async function findRunDirectory(
  root: string,
  parentRunId: string,
  depth = 4,
): Promise<string | null> {
  if (!existsSync(root)) return null;
  const summary = join(root, 'summary.json');
  if (existsSync(summary) && existsSync(join(root, 'config.yaml'))) {
    try {
      const parsed = JSON.parse(await readFile(summary, 'utf8')) as { parentRunId?: unknown };
      if (parsed.parentRunId === parentRunId) return root;
    } catch {
      // An unreadable summary is not the one we look for.
    }
  }
  if (depth === 0) return null;
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || /^fold_\d+$/.test(entry.name))
      continue;
    const found = await findRunDirectory(join(root, entry.name), parentRunId, depth - 1);
    if (found !== null) return found;
  }
  return null;
}
