/**
 * `register()`: the best fold's adapter, with the run-level thresholds.json, the base-model
 * reference and config.yaml beside it, uploaded to the parent run under `registered_model/` and
 * registered as a version of a Model Registry model, tagged and aliased.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createLogger, type Logger } from '../infra/index.js';
import { foldFiles, RegisteredModelStore, registeredModelFiles, RunStore } from '../run/index.js';
import type { MlflowClient, ModelVersion } from '../tracking/index.js';
import { aggregate, connectTracking } from './aggregate.js';
import { downloadOptional, isRunDirectory } from './sources.js';
import { formatNumber } from './report.js';
import {
  mentallamVersion,
  asBestFoldThresholds,
  checkInferenceThresholds,
  type BestFoldThresholds,
  type AggregateSummary,
  type InferenceThresholds,
} from './summary.js';

export const defaultModelName = 'mentallama-criteria-cls';
export const defaultAlias = 'champion';
/** The parent-run artifact directory the registered version's source points at. */
export const registeredModelPath = 'registered_model';

export interface RegisterOptions {
  /** The parent run id (or the training run directory, whose summary.json names it). */
  run: string;
  name?: string;
  alias?: string;
  trackingUri?: string;
  logger?: Logger;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface RegisterResult {
  name: string;
  version: string;
  alias: string;
  /** `models:/<name>@<alias>`, checked to resolve to `version`. */
  modelUri: string;
  source: string;
  parentRunId: string;
  bestFold: number;
  bestFoldRunId: string;
  datasetHash: string | null;
  configHash: string;
  /** false when an identical version (same run, fold, config and thresholds) already existed. */
  created: boolean;
  tags: Record<string, string>;
}

/** Files of a training checkpoint that inference does not need (resume state only). */
const resumeOnlyFile = /^(optimizer|scheduler|rng_state)[^/]*$/;

async function parentRunIdOf(run: string, cwd: string): Promise<string> {
  const path = resolve(cwd, run);
  if (!isRunDirectory(path)) return run.trim();
  const summary = new RunStore(path).summary;
  const { parentRunId } = await summary.read();
  if (parentRunId === null)
    throw new Error(`${summary.path} names no MLflow parent run: nothing to register`);
  return parentRunId;
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** The aggregate attached to the parent run, or a fresh one when it has none (or an old one). */
async function aggregateOf(
  client: MlflowClient,
  parentRunId: string,
  stageDir: string,
  options: RegisterOptions,
  logger: Logger,
): Promise<{ thresholds: InferenceThresholds; summary: AggregateSummary }> {
  const attached = new RunStore(join(stageDir, 'attached'));
  const thresholdsPath = await downloadOptional(
    client,
    parentRunId,
    attached.thresholds.name,
    attached.thresholds.path,
  );
  const summaryPath = await downloadOptional(
    client,
    parentRunId,
    attached.aggregate.name,
    attached.aggregate.path,
  );
  if (thresholdsPath !== undefined && summaryPath !== undefined) {
    try {
      const thresholds = checkInferenceThresholds(await attached.thresholds.read(), thresholdsPath);
      const summary = await attached.aggregate.read();
      if (
        thresholds.provenance.parentRunId === parentRunId &&
        thresholds.bestFold !== null &&
        summary.bestFold === thresholds.bestFold.fold
      )
        return { thresholds: asBestFoldThresholds(thresholds), summary };
    } catch (error) {
      logger.warn('the attached aggregate is not usable; aggregating again', {
        error: (error as Error).message,
      });
    }
  }
  logger.info('the parent run has no aggregate yet: aggregating first', { parentRunId });
  const result = await aggregate({
    run: parentRunId,
    logToMlflow: true,
    outDir: join(stageDir, 'aggregate'),
    logger,
    ...(options.trackingUri === undefined ? {} : { trackingUri: options.trackingUri }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  return { thresholds: asBestFoldThresholds(result.thresholds), summary: result.summary };
}

function versionTags(
  thresholds: InferenceThresholds,
  best: BestFoldThresholds,
  summary: AggregateSummary,
  thresholdsSha: string,
): Record<string, string> {
  const p = thresholds.provenance;
  const selection = best.selection;
  const tags: Record<string, string> = {
    'mentallam.parent_run_id': p.parentRunId ?? '',
    'mentallam.fold': String(best.fold),
    'mentallam.child_run_id': best.runId ?? '',
    'mentallam.dataset_hash': p.datasetHash ?? 'unknown',
    'mentallam.config_hash': p.configHash,
    'mentallam.thresholds_sha256': thresholdsSha,
    'mentallam.selection': `validation ${selection.metric} (${selection.mode}) = ${formatNumber(selection.value, 6)}`,
    'mentallam.base_model': p.baseModel.name ?? 'unknown',
    'mentallam.version': mentallamVersion(),
  };
  const metric = (key: string, value: number | undefined) => {
    if (value !== undefined && Number.isFinite(value)) tags[`metric.${key}`] = String(value);
  };
  metric('pooled_f1', summary.pooled.f1);
  metric('pooled_macro_f1', summary.pooled.macro_f1);
  metric('pooled_average_precision', summary.pooled.average_precision);
  metric('mean_test_f1', summary.acrossFolds.test_f1?.mean);
  metric('std_test_f1', summary.acrossFolds.test_f1?.std);
  metric('mean_test_macro_f1', summary.acrossFolds.test_macro_f1?.mean);
  metric(`fold_validation_${selection.metric}`, selection.value);
  metric('fold_test_f1', summary.folds.find((f) => f.fold === best.fold)?.testMetrics.test_f1);
  return tags;
}

/**
 * Registers the best fold (picked on validation by aggregate) of a cross-validation run as a new
 * version of `name` and points `alias` at it. Registering the same run again reuses the identical
 * existing version (and moves the alias to it) instead of adding a duplicate.
 */
export async function register(options: RegisterOptions): Promise<RegisterResult> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ env });
  const name = options.name ?? defaultModelName;
  const alias = options.alias ?? defaultAlias;
  const parentRunId = await parentRunIdOf(options.run, cwd);
  const fromEnv = env.MLFLOW_TRACKING_URI?.trim();
  const tracking = await connectTracking({
    trackingUri: options.trackingUri ?? (fromEnv ? fromEnv : undefined),
    cwd,
    logger,
    env,
  });
  const stageDir = await mkdtemp(join(tmpdir(), 'mentallam-register-'));
  try {
    const client = tracking.client;
    const { thresholds, summary } = await aggregateOf(
      client,
      parentRunId,
      stageDir,
      options,
      logger,
    );
    const best = thresholds.bestFold!;
    const childRunId = best.runId;
    if (childRunId === null)
      throw new Error(`The best fold ${best.fold} of run ${parentRunId} has no MLflow run`);

    // Stage: adapter files at the root (peft loads the directory as is), provenance beside them.
    const registered = new RegisteredModelStore(join(stageDir, registeredModelPath));
    const modelDir = registered.dir;
    await mkdir(modelDir, { recursive: true });
    const adapterFiles = (
      await client.listArtifacts(childRunId, foldFiles.bestAdapterDir, { recursive: true })
    ).filter((entry) => !entry.isDir);
    const relative = (path: string) => path.slice(foldFiles.bestAdapterDir.length + 1);
    const copied: string[] = [];
    for (const entry of adapterFiles) {
      const rel = relative(entry.path);
      if (resumeOnlyFile.test(basename(rel))) continue;
      await client.downloadArtifact(childRunId, entry.path, join(modelDir, rel));
      copied.push(rel);
    }
    for (const required of ['adapter_config.json', 'adapter_model.safetensors'])
      if (!copied.includes(required))
        throw new Error(
          `The best fold's run ${childRunId} has no best_adapter/${required}: cannot register`,
        );
    for (const reserved of Object.values(registeredModelFiles))
      if (copied.includes(reserved))
        throw new Error(
          `best_adapter/${reserved} would be overwritten by the registered ${reserved}`,
        );
    await registered.thresholds.write(thresholds);
    const config = await downloadOptional(
      client,
      parentRunId,
      registered.config.name,
      registered.config.path,
    );
    if (config === undefined) throw new Error(`Run ${parentRunId} has no config.yaml artifact`);
    await registered.baseModel.write({
      // The adapter is only usable on top of this base checkpoint.
      name: thresholds.provenance.baseModel.name,
      path: thresholds.provenance.baseModel.path,
      adapterFormat: 'peft (adapter_config.json + adapter_model.safetensors)',
      parentRunId,
      fold: best.fold,
      foldRunId: childRunId,
      datasetHash: thresholds.provenance.datasetHash,
      configHash: thresholds.provenance.configHash,
    });
    await client.uploadArtifacts(parentRunId, modelDir, registeredModelPath);

    const thresholdsSha = await sha256File(registered.thresholds.path);
    const tags = versionTags(thresholds, best, summary, thresholdsSha);
    await client.createRegisteredModel(name, {
      description:
        'MentaLLaMA DoRA adapter classifying (post, DSM-5 criterion) pairs; thresholds.json beside the adapter.',
    });
    const source = `${(await client.artifactUri(parentRunId)).replace(/\/+$/, '')}/${registeredModelPath}`;
    let version: ModelVersion | undefined = (await client.searchModelVersions(name)).find(
      (v) =>
        v.runId === parentRunId &&
        v.source === source &&
        v.tags['mentallam.fold'] === tags['mentallam.fold'] &&
        v.tags['mentallam.config_hash'] === tags['mentallam.config_hash'] &&
        v.tags['mentallam.thresholds_sha256'] === thresholdsSha,
    );
    const created = version === undefined;
    if (version === undefined)
      version = await client.createModelVersion({
        name,
        runId: parentRunId,
        artifactPath: registeredModelPath,
        tags,
        description: `Fold ${best.fold} of run ${parentRunId} (best on validation ${best.selection.metric}).`,
      });
    await client.setModelAlias(name, alias, version.version);
    const modelUri = `models:/${name}@${alias}`;
    const resolved = await client.resolveModelUri(modelUri);
    if (resolved.version !== version.version)
      throw new Error(
        `${modelUri} resolves to version ${resolved.version}, not ${version.version}`,
      );
    logger.info('registered', { name, version: version.version, alias, created, parentRunId });
    return {
      name,
      version: version.version,
      alias,
      modelUri,
      source: version.source,
      parentRunId,
      bestFold: best.fold,
      bestFoldRunId: childRunId,
      datasetHash: thresholds.provenance.datasetHash,
      configHash: thresholds.provenance.configHash,
      created,
      tags,
    };
  } finally {
    await rm(stageDir, { recursive: true, force: true });
    await tracking.close();
  }
}
