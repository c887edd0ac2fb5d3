/**
 * Reading the fold artifacts: from a training run directory, or from MLflow (the parent run's
 * children, found by their `mlflow.parentRunId` tag across all pages, and their artifacts,
 * downloaded into the run directory's layout). Every file is read through the run store.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../infra/index.js';
import {
  RunFileError,
  RunStore,
  foldOfDirName,
  type FoldStore,
  type TrainingSummary,
} from '../run/index.js';
import type { MlflowClient, Run } from '../tracking/index.js';
import { MlflowApiError } from '../tracking/index.js';
import { parseConfigView } from './compute.js';
import type { FoldArtifacts, RunSource } from './types.js';

export const foldTag = 'mentallam.fold';
export const datasetHashTag = 'mentallam.dataset_hash';

export function isRunDirectory(run: string): boolean {
  return existsSync(run) && statSync(run).isDirectory();
}

/** One fold's predictions, thresholds and metrics, each checked against its schema. */
async function readFold(
  files: FoldStore,
  runId: string | null,
  status?: string,
): Promise<FoldArtifacts> {
  return {
    fold: files.index,
    runId,
    ...(status === undefined ? {} : { status }),
    predictions: await files.predictions.read(),
    thresholds: await files.thresholds.read(),
    metrics: await files.metrics.read(),
    bestAdapterDir: existsSync(files.bestAdapterDir) ? files.bestAdapterDir : null,
  };
}

/**
 * The training's summary.json, or null with a warning when it is not one (a summary an older
 * version's aggregation wrote over it): aggregation needs it only for run ids and wall time.
 */
async function readTrainingSummary(
  store: RunStore,
  warnings: string[],
): Promise<TrainingSummary | null> {
  try {
    return await store.summary.readIfExists();
  } catch (error) {
    if (!(error instanceof RunFileError)) throw error;
    warnings.push(`${error.message}: not used`);
    return null;
  }
}

/** The folds of a training run directory: every `fold_{i}/` holding predictions.json. */
export async function readRunDirectory(runDir: string): Promise<RunSource> {
  const store = new RunStore(runDir);
  if (!store.config.exists())
    throw new Error(`${store.dir} is not a mentallam run directory: config.yaml is missing`);
  const configYaml = await store.config.readText();
  const config = parseConfigView(configYaml);
  const warnings: string[] = [];
  const trainingSummary = await readTrainingSummary(store, warnings);
  const runIdOfFold = (fold: number): string | null =>
    trainingSummary?.folds.find((f) => f.fold === fold)?.runId ?? null;
  const folds: FoldArtifacts[] = [];
  for (const files of await store.folds()) {
    if (!files.predictions.exists()) {
      warnings.push(`fold ${files.index} has no predictions.json (unfinished?): left out`);
      continue;
    }
    folds.push(await readFold(files, runIdOfFold(files.index)));
  }
  const datasetHash =
    trainingSummary?.datasetHash ??
    (await store.manifest.readIfExists())?.hash ??
    folds[0]?.thresholds.datasetHash ??
    null;
  return {
    kind: 'run-dir',
    runDir: store.dir,
    parentRunId: trainingSummary?.parentRunId ?? null,
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
 * The parent run's children and their artifacts, downloaded into `workDir` laid out as a run
 * directory (the parent's config.yaml and summary.json at the top, each fold's files in
 * fold_{i}/). A fold with several child runs (a resumed training) keeps its latest FINISHED one;
 * children that did not finish are left out with a warning.
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
  const store = new RunStore(workDir);
  const warnings: string[] = [];
  const configPath = await downloadOptional(
    client,
    parentRunId,
    store.config.name,
    store.config.path,
  );
  if (configPath === undefined)
    warnings.push(
      'the parent run has no config.yaml artifact: defaults used (best fold by validation f1, max)',
    );
  const configYaml = configPath === undefined ? '' : await store.config.readText();
  await downloadOptional(client, parentRunId, store.summary.name, store.summary.path);
  const trainingSummary = await readTrainingSummary(store, warnings);

  const children = await childRuns(client, parent);
  const byFold = new Map<number, Run[]>();
  for (const child of children) {
    const tagged = child.tags[foldTag];
    const fold = tagged !== undefined ? Number(tagged) : foldOfDirName(child.info.runName);
    if (fold === null || !Number.isInteger(fold)) {
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
    const files = store.fold(fold);
    const missing: string[] = [];
    for (const file of [files.predictions, files.thresholds, files.metrics]) {
      const got = await downloadOptional(client, chosen.info.runId, file.name, file.path);
      if (got === undefined) missing.push(file.name);
    }
    if (missing.length > 0) {
      warnings.push(
        `fold ${fold} (run ${chosen.info.runId}) lacks ${missing.join(', ')}: left out`,
      );
      continue;
    }
    logger?.debug('fold artifacts downloaded', { fold, runId: chosen.info.runId });
    const artifacts = await readFold(files, chosen.info.runId, chosen.info.status);
    folds.push({ ...artifacts, bestAdapterDir: null });
  }
  const datasetHash = parent.tags[datasetHashTag] ?? trainingSummary?.datasetHash ?? null;
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
  const store = new RunStore(root);
  if (store.summary.exists() && store.config.exists()) {
    try {
      if ((await store.summary.read()).parentRunId === parentRunId) return root;
    } catch {
      // An unreadable summary is not the one we look for.
    }
  }
  if (depth === 0) return null;
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || foldOfDirName(entry.name) !== null)
      continue;
    const found = await findRunDirectory(join(root, entry.name), parentRunId, depth - 1);
    if (found !== null) return found;
  }
  return null;
}
