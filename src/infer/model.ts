// Finds the adapter(s), base model, thresholds and training config behind a model reference:
// an adapter directory, a run (directory or MLflow run id, optionally one fold), or a registered
// model version (models:/name@alias). MLflow sources are downloaded into a local cache in the run
// directory layout, so one code path reads every source.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

import type { Config } from '../config/index.js';
import { findModel, modelPathExpectation } from '../engine/index.js';
import { writeFileAtomic, type Logger } from '../infra/index.js';
import {
  ConfigFile,
  foldFiles,
  foldOfDirName,
  RegisteredModelStore,
  RunStore,
  runFiles,
  type FoldStore,
} from '../run/index.js';
import type { MlflowClient } from '../tracking/index.js';
import { meanThresholds, readThresholds, type ThresholdTable } from './thresholds.js';

/** A model as a user names it: at most one of checkpoint, run and model (and a base beside). */
export interface ModelReference {
  /** An adapter directory in peft's layout. */
  checkpoint?: string;
  /** A run directory or MLflow run id, optionally `/<fold>`. */
  run?: string;
  /** A registered model: models:/<name>@<alias> or models:/<name>/<version>. */
  model?: string;
  /** The base model directory when the adapter's own reference does not resolve here. */
  base?: string;
}

/** Where the model comes from; exactly one of these is given. */
export type ModelSource =
  | { kind: 'checkpoint'; dir: string }
  | { kind: 'run'; ref: string }
  | { kind: 'registry'; uri: string };

/** The DoRA hyper-parameters an adapter was trained with (from its adapter_config.json). */
export interface AdapterSettings {
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  useRslora: boolean;
  /** base_model_name_or_path as saved, possibly a hub id or a path on another machine. */
  baseModelNameOrPath: string | null;
}

export interface ResolvedAdapter {
  dir: string;
  fold: number | null;
  settings: AdapterSettings;
}

/** Identifies the model in outputs and in the inference run's params; never holds post text. */
export interface ModelDescription {
  kind: ModelSource['kind'];
  /** The reference as given (path, run id or models:/ URI). */
  ref: string;
  runId?: string;
  modelName?: string;
  modelVersion?: string;
  folds: (number | null)[];
  ensemble: boolean;
  thresholdsSource: string;
}

export interface ResolvedModel {
  adapters: ResolvedAdapter[];
  baseModelDir: string;
  /** Applied to the (averaged) probability; null = none found (0.5 unless overridden). */
  thresholds: ThresholdTable | null;
  /** The config the model was trained with (prompt template, padding); null when unknown. */
  trainingConfig: Config | null;
  description: ModelDescription;
}

export interface ResolveModelOptions {
  source: ModelSource;
  ensemble?: boolean;
  /** Base model directory; overrides the adapter's base_model_name_or_path and the run config. */
  base?: string;
  /** The current config, for the base model path when the run's own config does not name one. */
  config?: Config;
  cwd?: string;
  /** Needed for MLflow run ids and models:/ URIs. */
  client?: MlflowClient;
  /** Where MLflow sources are downloaded; default $MENTALLAM_CACHE or ~/.cache/mentallam. */
  cacheDir?: string;
  logger?: Logger;
}

export class ModelResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelResolutionError';
  }
}

const isDir = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();
const hasAdapter = (dir: string): boolean => existsSync(join(dir, 'adapter_config.json'));

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.MENTALLAM_CACHE ?? join(homedir(), '.cache', 'mentallam');
}

/** Reads adapter_config.json (peft's layout) for the settings the classifier is built with. */
export async function readAdapterSettings(dir: string): Promise<AdapterSettings> {
  const path = join(dir, 'adapter_config.json');
  if (!existsSync(path))
    throw new ModelResolutionError(`${dir} is not an adapter directory (no adapter_config.json)`);
  const raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  const num = (key: string, fallback?: number): number => {
    const value = raw[key];
    if (typeof value === 'number' && Number.isFinite(value)) return value;
    if (fallback !== undefined) return fallback;
    throw new ModelResolutionError(`${path}: "${key}" must be a number`);
  };
  const modules = raw.target_modules;
  const targetModules = Array.isArray(modules)
    ? modules.filter((m): m is string => typeof m === 'string')
    : typeof modules === 'string'
      ? [modules]
      : [];
  if (targetModules.length === 0)
    throw new ModelResolutionError(`${path}: "target_modules" is empty`);
  const base = raw.base_model_name_or_path;
  return {
    r: num('r'),
    alpha: num('lora_alpha'),
    dropout: num('lora_dropout', 0),
    targetModules: [...targetModules].sort(),
    useRslora: raw.use_rslora === true,
    baseModelNameOrPath: typeof base === 'string' && base !== '' ? base : null,
  };
}

/** A run's config.yaml validated against the current schema, or null (with a warning) when not. */
export async function readTrainingConfig(path: string, logger?: Logger): Promise<Config | null> {
  const file = new ConfigFile(path);
  try {
    return await file.readIfExists();
  } catch (error) {
    logger?.warn('ignoring a training config that no longer validates', {
      path,
      error: (error as Error).message.split('\n')[0],
    });
    return null;
  }
}

/** The folds of a run that hold a best adapter, by fold index. */
async function runFolds(store: RunStore): Promise<FoldStore[]> {
  return (await store.folds()).filter((fold) => hasAdapter(fold.bestAdapterDir));
}

/**
 * The fold used when neither a fold nor --ensemble is asked for: aggregate.json's bestFold when
 * aggregation chose one, else the best early-stopping value on the inner validation split
 * (fold_i/metrics.json, in the run's early-stopping mode), else the lowest fold. Never the
 * held-out test scores: choosing on them would leak the test folds into the model choice.
 */
async function bestFold(
  store: RunStore,
  folds: FoldStore[],
  trainingConfig: Config | null,
): Promise<number> {
  const chosen = (await store.aggregate.readIfExists())?.bestFold;
  if (chosen !== undefined && chosen !== null && folds.some((f) => f.index === chosen)) {
    return chosen;
  }
  const mode = trainingConfig?.training.early_stopping.mode ?? 'max';
  let best: { fold: number; value: number } | null = null;
  for (const fold of folds) {
    const value = (await fold.metrics.readIfExists())?.bestValidation;
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    const better = best === null || (mode === 'max' ? value > best.value : value < best.value);
    if (better) best = { fold: fold.index, value };
  }
  return best?.fold ?? folds[0]!.index;
}

/**
 * Base model: --base, else the adapter's base path if it holds a model here, else the one
 * recorded at registration (base_model.json), else the run's model.path, else the current
 * config's. A model is a checkpoint directory, a .gguf file or a directory holding one.
 */
function resolveBase(
  options: ResolveModelOptions,
  settings: AdapterSettings,
  trainingConfig: Config | null,
  cwd: string,
  recorded: string | null = null,
): string {
  const candidates: string[] = [];
  if (options.base !== undefined) {
    const path = resolve(cwd, options.base);
    if (!findModel(path)) {
      throw new ModelResolutionError(
        `--base ${options.base}: no model there (expected ${modelPathExpectation})`,
      );
    }
    return path;
  }
  if (settings.baseModelNameOrPath) candidates.push(resolve(cwd, settings.baseModelNameOrPath));
  if (recorded) candidates.push(resolve(cwd, recorded));
  if (trainingConfig) candidates.push(resolve(cwd, trainingConfig.model.path));
  if (options.config) candidates.push(resolve(cwd, options.config.model.path));
  const found = candidates.find((path) => findModel(path) !== null);
  if (found) return found;
  throw new ModelResolutionError(
    `cannot find the base model (tried ${candidates.length > 0 ? candidates.join(', ') : 'nothing'}); ` +
      'pass --base <model dir or .gguf file>',
  );
}

/** An adapter directory, with thresholds.json and config.yaml looked up beside and above it. */
async function resolveCheckpoint(dir: string, options: ResolveModelOptions, cwd: string) {
  const adapterDir = resolve(cwd, dir);
  if (!hasAdapter(adapterDir)) {
    throw new ModelResolutionError(`--checkpoint ${dir}: no adapter_config.json there`);
  }
  const settings = await readAdapterSettings(adapterDir);
  // A fold's best_adapter/ has the fold's thresholds.json beside it and the run's config.yaml
  // two levels up; any thresholds.json / config.yaml there is read.
  const above = [adapterDir, dirname(adapterDir), dirname(dirname(adapterDir))];
  let thresholds: ThresholdTable | null = null;
  for (const d of above.slice(0, 2)) {
    thresholds = await readThresholds(join(d, foldFiles.thresholds));
    if (thresholds) break;
  }
  let trainingConfig: Config | null = null;
  for (const d of above) {
    trainingConfig = await readTrainingConfig(join(d, runFiles.config), options.logger);
    if (trainingConfig) break;
  }
  return {
    adapters: [{ dir: adapterDir, fold: foldOfDirName(basename(dirname(adapterDir))), settings }],
    baseModelDir: resolveBase(options, settings, trainingConfig, cwd),
    thresholds,
    trainingConfig,
  };
}

/** A run directory: one fold, the best fold, or every fold (ensemble). */
async function resolveRunDir(
  runDir: string,
  fold: number | null,
  options: ResolveModelOptions,
  cwd: string,
) {
  const store = new RunStore(runDir);
  const folds = await runFolds(store);
  if (folds.length === 0) {
    throw new ModelResolutionError(
      `${runDir}: no fold_<i>/best_adapter/ with an adapter_config.json`,
    );
  }
  const trainingConfig = await readTrainingConfig(store.config.path, options.logger);
  let chosen: FoldStore[];
  if (options.ensemble) {
    if (fold !== null)
      throw new ModelResolutionError('--ensemble uses every fold: do not name one');
    chosen = folds;
  } else {
    const index = fold ?? (await bestFold(store, folds, trainingConfig));
    const found = folds.find((f) => f.index === index);
    if (!found) {
      throw new ModelResolutionError(
        `${runDir}: fold ${index} has no best adapter (folds: ${folds.map((f) => f.index).join(', ')})`,
      );
    }
    chosen = [found];
  }
  const adapters: ResolvedAdapter[] = [];
  for (const f of chosen) {
    const dir = f.bestAdapterDir;
    adapters.push({ dir, fold: f.index, settings: await readAdapterSettings(dir) });
  }
  let thresholds: ThresholdTable | null;
  if (adapters.length === 1) {
    thresholds = await readThresholds(chosen[0]!.thresholds);
  } else {
    // The run-level file (aggregation) holds thresholds for the averaged probabilities; without it
    // the fold thresholds' mean is the nearest stand-in.
    thresholds = await readThresholds(store.thresholds);
    if (!thresholds) {
      const tables = (await Promise.all(chosen.map((f) => readThresholds(f.thresholds)))).filter(
        (t): t is ThresholdTable => t !== null,
      );
      thresholds = tables.length > 0 ? meanThresholds(tables) : null;
      if (thresholds) {
        options.logger?.warn(
          'no run-level thresholds.json: using the mean of the fold thresholds',
          {
            runDir,
          },
        );
      }
    }
  }
  return {
    adapters,
    baseModelDir: resolveBase(options, adapters[0]!.settings, trainingConfig, cwd),
    thresholds,
    trainingConfig,
  };
}

/** Splits `<ref>[/fold]` where fold is `3` or `fold_3`. */
export function splitFoldSuffix(ref: string): { head: string; fold: number | null } {
  const match = /^(.*?)[/\\](?:fold_)?(\d+)[/\\]?$/.exec(ref);
  if (match && match[1] !== '') return { head: match[1]!, fold: Number(match[2]) };
  return { head: ref.replace(/[/\\]+$/, ''), fold: null };
}

/** Downloads every file under `artifactPath` of a run into `localDir` (skipping what is there). */
async function downloadTree(
  client: MlflowClient,
  runId: string,
  artifactPath: string,
  localDir: string,
): Promise<number> {
  const entries = await client.listArtifacts(runId, artifactPath, { recursive: true });
  let files = 0;
  for (const entry of entries) {
    if (entry.isDir) continue;
    const relative = artifactPath === '' ? entry.path : entry.path.slice(artifactPath.length + 1);
    const target = join(localDir, relative);
    if (!existsSync(target)) await client.downloadArtifact(runId, entry.path, target);
    files += 1;
  }
  return files;
}

async function downloadFileIfPresent(
  client: MlflowClient,
  runId: string,
  artifactPath: string,
  target: string,
): Promise<boolean> {
  if (existsSync(target)) return true;
  const parent = artifactPath.includes('/')
    ? artifactPath.slice(0, artifactPath.lastIndexOf('/'))
    : '';
  const listed = await client.listArtifacts(runId, parent);
  if (!listed.some((e) => e.path === artifactPath && !e.isDir)) return false;
  await client.downloadArtifact(runId, artifactPath, target);
  return true;
}

const COMPLETE_MARKER = '.mentallam-download-complete';

/** Lays an MLflow training run out as a local run directory: config.yaml, aggregate, fold_i/. */
async function materializeRun(
  client: MlflowClient,
  runId: string,
  cacheDir: string,
  logger?: Logger,
) {
  const run = await client.getRun(runId);
  const parentId = run.tags['mlflow.parentRunId'];
  const dir = join(cacheDir, 'runs', runId);
  if (existsSync(join(dir, COMPLETE_MARKER))) {
    return { dir, isChild: parentId !== undefined, fold: foldTag(run.tags) };
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  logger?.info('downloading the model from MLflow', { runId, cache: dir });
  if (parentId !== undefined) {
    // One fold's child run: its adapter and thresholds beside it, and the parent's training
    // config, laid out as a fold directory with the config next to it.
    const files = await downloadTree(
      client,
      runId,
      foldFiles.bestAdapterDir,
      join(dir, foldFiles.bestAdapterDir),
    );
    if (files === 0)
      throw new ModelResolutionError(`MLflow run ${runId} has no best_adapter/ artifacts`);
    await downloadFileIfPresent(
      client,
      runId,
      foldFiles.thresholds,
      join(dir, foldFiles.thresholds),
    );
    await downloadFileIfPresent(client, parentId, runFiles.config, join(dir, runFiles.config));
  } else {
    // The parent run: its files and each fold's, laid out as the training's run directory.
    const store = new RunStore(dir);
    for (const file of [store.config, store.aggregate, store.thresholds]) {
      await downloadFileIfPresent(client, runId, file.name, file.path);
    }
    const children = await client.searchRuns({
      experimentIds: [run.info.experimentId],
      filter: `tags.mlflow.parentRunId = '${runId}'`,
    });
    for (const child of children) {
      const fold = foldTag(child.tags);
      if (fold === null) continue;
      const files = store.fold(fold);
      const count = await downloadTree(
        client,
        child.info.runId,
        foldFiles.bestAdapterDir,
        files.bestAdapterDir,
      );
      if (count === 0) continue;
      // The metrics choose the best fold on validation when the run was not aggregated.
      for (const file of [files.thresholds, files.metrics]) {
        await downloadFileIfPresent(client, child.info.runId, file.name, file.path);
      }
    }
  }
  await writeFileAtomic(join(dir, COMPLETE_MARKER), '');
  return { dir, isChild: parentId !== undefined, fold: foldTag(run.tags) };
}

function foldTag(tags: Record<string, string>): number | null {
  const value = tags['mentallam.fold'];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

/** The run-relative artifact path of a model version's source. */
async function versionArtifactPath(
  client: MlflowClient,
  source: string,
  runId: string | undefined,
): Promise<{ runId: string; path: string }> {
  const runsUri = /^runs:\/([^/]+)\/?(.*)$/.exec(source);
  if (runsUri) return { runId: runsUri[1]!, path: runsUri[2]!.replace(/\/+$/, '') };
  if (runId !== undefined) {
    const root = (await client.artifactUri(runId)).replace(/\/+$/, '');
    if (source === root) return { runId, path: '' };
    if (source.startsWith(`${root}/`))
      return { runId, path: source.slice(root.length + 1).replace(/\/+$/, '') };
  }
  throw new ModelResolutionError(
    `model version source ${source} is not inside its run's artifacts; cannot download it`,
  );
}

/** The model behind `source`, its thresholds and training config, ready to load. */
export async function resolveModel(options: ResolveModelOptions): Promise<ResolvedModel> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const { source } = options;
  const cacheDir = resolve(cwd, options.cacheDir ?? defaultCacheDir());
  const needClient = (): MlflowClient => {
    if (!options.client)
      throw new ModelResolutionError('this model reference needs MLflow tracking');
    return options.client;
  };
  let resolved: Omit<ResolvedModel, 'description'>;
  const description: Omit<ModelDescription, 'folds' | 'thresholdsSource'> = {
    kind: source.kind,
    ref:
      source.kind === 'checkpoint' ? source.dir : source.kind === 'run' ? source.ref : source.uri,
    ensemble: options.ensemble === true,
  };

  if (source.kind === 'checkpoint') {
    if (options.ensemble)
      throw new ModelResolutionError('--ensemble needs --run (a checkpoint is one adapter)');
    resolved = await resolveCheckpoint(source.dir, options, cwd);
  } else if (source.kind === 'run') {
    const direct = resolve(cwd, source.ref);
    const { head, fold } = splitFoldSuffix(source.ref);
    if (isDir(direct) && hasAdapter(direct)) {
      resolved = await resolveCheckpoint(direct, { ...options, ensemble: false }, cwd);
    } else if (isDir(direct) && foldOfDirName(basename(direct)) !== null) {
      resolved = await resolveRunDir(
        dirname(direct),
        foldOfDirName(basename(direct)),
        options,
        cwd,
      );
    } else if (isDir(direct)) {
      resolved = await resolveRunDir(direct, null, options, cwd);
    } else if (fold !== null && isDir(resolve(cwd, head))) {
      resolved = await resolveRunDir(resolve(cwd, head), fold, options, cwd);
    } else if (/^[\w-]+$/.test(head) && !isAbsolute(head)) {
      const client = needClient();
      const run = await materializeRun(client, head, cacheDir, options.logger);
      description.runId = head;
      if (run.isChild) {
        if (options.ensemble)
          throw new ModelResolutionError(
            `run ${head} is one fold's run: --ensemble needs the parent run`,
          );
        if (fold !== null && fold !== run.fold)
          throw new ModelResolutionError(`run ${head} is fold ${run.fold}, not ${fold}`);
        resolved = await resolveCheckpoint(join(run.dir, foldFiles.bestAdapterDir), options, cwd);
        resolved.adapters[0]!.fold = run.fold;
      } else {
        resolved = await resolveRunDir(run.dir, fold, options, cwd);
      }
    } else {
      throw new ModelResolutionError(
        `--run ${source.ref}: not a run directory nor an MLflow run id`,
      );
    }
  } else {
    const client = needClient();
    const version = await client.resolveModelUri(source.uri);
    description.modelName = version.name;
    description.modelVersion = version.version;
    const location = await versionArtifactPath(client, version.source, version.runId);
    description.runId = location.runId;
    const dir = join(cacheDir, 'models', encodeURIComponent(version.name), version.version);
    if (!existsSync(join(dir, COMPLETE_MARKER))) {
      await rm(dir, { recursive: true, force: true });
      options.logger?.info('downloading the registered model', {
        model: version.name,
        version: version.version,
        cache: dir,
      });
      const files = await downloadTree(client, location.runId, location.path, dir);
      if (files === 0)
        throw new ModelResolutionError(`${source.uri}: the version's source holds no files`);
      await writeFileAtomic(join(dir, COMPLETE_MARKER), '');
    }
    resolved = await resolveRegisteredDir(dir, options, cwd);
  }
  return {
    ...resolved,
    description: {
      ...description,
      folds: resolved.adapters.map((a) => a.fold),
      thresholdsSource: resolved.thresholds?.source ?? 'default',
    },
  };
}

/** A registered version's files: an adapter at the root or in one subdirectory, or fold_i/ dirs. */
async function resolveRegisteredDir(dir: string, options: ResolveModelOptions, cwd: string) {
  if ((await runFolds(new RunStore(dir))).length > 0 && (options.ensemble || !hasAdapter(dir))) {
    return resolveRunDir(dir, null, options, cwd);
  }
  if (options.ensemble) {
    throw new ModelResolutionError(
      '--ensemble: this registered model holds a single adapter, not the folds',
    );
  }
  let adapterDir = hasAdapter(dir) ? dir : null;
  if (!adapterDir) {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && hasAdapter(join(dir, entry.name))) {
        adapterDir = join(dir, entry.name);
        break;
      }
    }
  }
  if (!adapterDir)
    throw new ModelResolutionError(`${dir}: the registered model holds no adapter_config.json`);
  const settings = await readAdapterSettings(adapterDir);
  const registered = new RegisteredModelStore(dir);
  const beside = new RegisteredModelStore(adapterDir);
  // Registration writes the best fold's thresholds.json here; a version registered another way
  // may carry a fold's: either is read for its global and per-criterion thresholds.
  const thresholds =
    (await readThresholds(registered.thresholds.path)) ??
    (await readThresholds(beside.thresholds.path));
  const trainingConfig =
    (await readTrainingConfig(registered.config.path, options.logger)) ??
    (await readTrainingConfig(beside.config.path, options.logger));
  // Registration records the base checkpoint's path beside the adapter (base_model.json).
  const recorded = (await registered.baseModel.readIfExists())?.path || null;
  return {
    adapters: [{ dir: adapterDir, fold: null, settings }],
    baseModelDir: resolveBase(options, settings, trainingConfig, cwd, recorded),
    thresholds,
    trainingConfig,
  };
}
