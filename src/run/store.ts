/**
 * A run directory as typed files: `store.summary.write(summary)`, `store.fold(0).metrics.read()`.
 * The only code that knows where a run's files are and what they hold.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import {
  AggregateSummary,
  BaseModelFile,
  InferenceThresholds,
  ThresholdTableFile,
} from './aggregateFormats.js';
import { JsonCodec } from './codec.js';
import { ConfigFile, JsonFile, OverridesFile, TextFile } from './files.js';
import {
  CurvesFile,
  FoldCheckpointState,
  FoldMetricsFile,
  FoldResult,
  FoldThresholdsFile,
  PredictionsFile,
} from './foldFormats.js';
import {
  foldDirName,
  foldFiles,
  foldOfDirName,
  rankDirName,
  registeredModelFiles,
  runFiles,
  splitFileName,
} from './layout.js';
import { ManifestFile, RunState, SplitFile, TrainingSummary } from './runFormats.js';

/**
 * One codec per format, shared by every store (ajv compiles each schema once). `parse` checks a
 * value that was read some other way (a test, a file fetched by hand).
 */
export const fileFormats = {
  manifest: new JsonCodec(ManifestFile, 'a run manifest'),
  split: new JsonCodec(SplitFile, 'a fold split file'),
  summary: new JsonCodec(TrainingSummary, "a training run's summary.json"),
  runState: new JsonCodec(RunState, 'a run state file'),
  aggregate: new JsonCodec(AggregateSummary, "aggregation's aggregate.json"),
  inferenceThresholds: new JsonCodec(InferenceThresholds, 'an inference thresholds.json'),
  thresholdTable: new JsonCodec(ThresholdTableFile, 'a thresholds file'),
  baseModel: new JsonCodec(BaseModelFile, "a registered model's base_model.json"),
  predictions: new JsonCodec(PredictionsFile, "a fold's predictions.json"),
  foldThresholds: new JsonCodec(FoldThresholdsFile, "a fold's thresholds.json"),
  foldMetrics: new JsonCodec(FoldMetricsFile, "a fold's metrics.json"),
  curves: new JsonCodec(CurvesFile, "a fold's curves.json"),
  result: new JsonCodec(FoldResult, "a fold's result.json"),
  checkpoint: new JsonCodec(FoldCheckpointState, "an interrupted fold's trainer_state.json"),
};
const codecs = fileFormats;

/** The files of one fold: fold_{i}/ in the run directory. */
export class FoldStore {
  readonly dir: string;
  readonly predictions: JsonFile<typeof PredictionsFile>;
  readonly thresholds: JsonFile<typeof FoldThresholdsFile>;
  readonly metrics: JsonFile<typeof FoldMetricsFile>;
  readonly curves: JsonFile<typeof CurvesFile>;
  readonly result: JsonFile<typeof FoldResult>;
  readonly plotsDir: string;
  readonly bestAdapterDir: string;
  readonly checkpointDir: string;
  /** The trainer state beside an interrupted fold's checkpointed adapter. */
  readonly checkpointState: JsonFile<typeof FoldCheckpointState>;

  constructor(
    runDir: string,
    readonly index: number,
  ) {
    this.dir = join(runDir, foldDirName(index));
    this.predictions = new JsonFile(join(this.dir, foldFiles.predictions), codecs.predictions);
    this.thresholds = new JsonFile(join(this.dir, foldFiles.thresholds), codecs.foldThresholds);
    this.metrics = new JsonFile(join(this.dir, foldFiles.metrics), codecs.foldMetrics);
    this.curves = new JsonFile(join(this.dir, foldFiles.curves), codecs.curves);
    this.result = new JsonFile(join(this.dir, foldFiles.result), codecs.result);
    this.plotsDir = join(this.dir, foldFiles.plotsDir);
    this.bestAdapterDir = join(this.dir, foldFiles.bestAdapterDir);
    this.checkpointDir = join(this.dir, foldFiles.checkpointDir);
    this.checkpointState = new JsonFile(
      join(this.checkpointDir, foldFiles.trainerState),
      codecs.checkpoint,
    );
  }

  /** The files a fold's MLflow child run holds at its root (the folders go as plots/, best_adapter/). */
  get artifactPaths(): string[] {
    return [this.predictions, this.thresholds, this.metrics, this.curves].map((file) => file.path);
  }
}

/** A run directory: what training writes and aggregation, inference and a resume read back. */
export class RunStore {
  readonly dir: string;
  readonly config: ConfigFile;
  readonly overrides: OverridesFile;
  readonly manifest: JsonFile<typeof ManifestFile>;
  readonly splitsDir: string;
  readonly summary: JsonFile<typeof TrainingSummary>;
  readonly runState: JsonFile<typeof RunState>;
  readonly aggregate: JsonFile<typeof AggregateSummary>;
  readonly summaryMarkdown: TextFile;
  /** The run-level thresholds.json aggregation writes (the fold ensemble's). */
  readonly thresholds: JsonFile<typeof InferenceThresholds>;
  readonly report: TextFile;
  readonly plotsDir: string;
  readonly benchDir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    const at = (name: string) => join(this.dir, name);
    this.config = new ConfigFile(at(runFiles.config));
    this.overrides = new OverridesFile(at(runFiles.overrides));
    this.manifest = new JsonFile(at(runFiles.manifest), codecs.manifest);
    this.splitsDir = at(runFiles.splitsDir);
    this.summary = new JsonFile(at(runFiles.summary), codecs.summary);
    this.runState = new JsonFile(at(runFiles.runState), codecs.runState);
    this.aggregate = new JsonFile(at(runFiles.aggregate), codecs.aggregate);
    this.summaryMarkdown = new TextFile(at(runFiles.summaryMarkdown), 'the aggregate summary.md');
    this.thresholds = new JsonFile(at(runFiles.thresholds), codecs.inferenceThresholds);
    this.report = new TextFile(at(runFiles.report), 'the aggregate report.html');
    this.plotsDir = at(runFiles.plotsDir);
    this.benchDir = at(runFiles.benchDir);
  }

  async create(): Promise<this> {
    await mkdir(this.dir, { recursive: true });
    return this;
  }

  /** folds/fold_{i}.json. */
  split(fold: number): JsonFile<typeof SplitFile> {
    return new JsonFile(join(this.splitsDir, splitFileName(fold)), codecs.split);
  }

  fold(index: number): FoldStore {
    return new FoldStore(this.dir, index);
  }

  /** ranks/rank_{r}/: a rank's own files in a multi-process run, laid out as a run directory. */
  rank(rank: number): RunStore {
    return new RunStore(join(this.dir, runFiles.ranksDir, rankDirName(rank)));
  }

  /** The fold_{i}/ folders present, by index. */
  async folds(): Promise<FoldStore[]> {
    if (!existsSync(this.dir)) return [];
    const entries = await readdir(this.dir, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isDirectory())
      .map((entry) => foldOfDirName(entry.name))
      .filter((fold): fold is number => fold !== null)
      .sort((a, b) => a - b)
      .map((fold) => this.fold(fold));
  }
}

/** The folder of a registered model version: the adapter's files plus provenance beside them. */
export class RegisteredModelStore {
  readonly dir: string;
  readonly thresholds: JsonFile<typeof InferenceThresholds>;
  readonly config: ConfigFile;
  readonly baseModel: JsonFile<typeof BaseModelFile>;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.thresholds = new JsonFile(
      join(this.dir, registeredModelFiles.thresholds),
      codecs.inferenceThresholds,
    );
    this.config = new ConfigFile(join(this.dir, registeredModelFiles.config));
    this.baseModel = new JsonFile(join(this.dir, registeredModelFiles.baseModel), codecs.baseModel);
  }
}

/**
 * Any thresholds file (a fold's, the run-level one, a registered copy) read for what inference
 * needs of it: `global` and `perCriterion`.
 */
export function thresholdTableFile(path: string): JsonFile<typeof ThresholdTableFile> {
  return new JsonFile(path, codecs.thresholdTable);
}
