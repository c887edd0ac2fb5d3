/**
 * `infer()`: scores (post, criterion) pairs with a trained model. Three input forms: one post
 * (with one criterion, or all nine), a list of records, or a JSONL stream read and written line by
 * line in chunks. Everything that needs no model (the arguments, the criterion, an empty post) is
 * checked before the model loads. A stream stops after the chunk in hand when interrupted, and
 * picks up after the records an interrupted run already wrote (`skip`). Raw post text is never
 * logged and never sent to MLflow: only counts, latency figures and sha256 digests of the
 * records' ids are.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { Config } from '../config/index.js';
import { loadCriteria, type Criterion } from '../data/index.js';
import {
  listenForStop,
  resolveConfig,
  resolveConfiguredTracking,
  type ConfigSource,
} from '../engine/index.js';
import { createLogger, type Logger } from '../infra/index.js';
import { withParentRun, type ActiveRun, type ResolvedTracking } from '../tracking/index.js';
import { resolveCriterion } from './criteria.js';
import {
  createJsonlWriter,
  isErrorRecord,
  parseInputLine,
  readLineChunks,
  validateInput,
  type ErrorRecord,
  type InferInput,
  type ParsedLine,
  type SkipRecords,
} from './jsonl.js';
import { type InferLatency } from './latency.js';
import {
  resolveModel,
  splitFoldSuffix,
  type ModelDescription,
  type ModelReference,
  type ModelSource,
  type ResolvedModel,
} from './model.js';
import { Predictor, type ModelLoader } from './predictor.js';
import { thresholdFor, type ThresholdOrigin, type ThresholdTable } from './thresholds.js';

/** One scored pair. `line` is the JSONL line (1-based) or the record's index in a list. */
export interface Prediction {
  line?: number;
  id?: string | number;
  criterion: string;
  symptom: string;
  /** P(the post shows the criterion); the fold mean for an ensemble. */
  probability: number;
  threshold: number;
  thresholdOrigin: ThresholdOrigin;
  label: 'yes' | 'no';
}

export interface InferCounts {
  /** Records read (JSONL: non-blank lines). */
  records: number;
  pairs: number;
  failed: number;
  positives: number;
}

/** What inference and the bench share besides the config and the model. */
export interface ModelRunOptions {
  /** Base of relative paths (default the working directory). */
  cwd?: string;
  /** Tracking to use instead of resolving it from the config (registry look-ups and logging). */
  tracking?: ResolvedTracking;
  /** Where MLflow models are downloaded; default $MENTALLAM_CACHE or ~/.cache/mentallam. */
  cacheDir?: string;
  logger?: Logger;
  /** Replaces the native Classifier (tests). */
  loadModel?: ModelLoader;
  /** Millisecond clock for the latency figures; default performance.now. */
  now?: () => number;
}

export interface InferOptions extends ConfigSource, ModelReference, ModelRunOptions {
  /** Average every fold adapter of the run; default inference.ensemble. */
  ensemble?: boolean;
  /** One threshold for every criterion; default inference.threshold, then thresholds.json. */
  threshold?: number | null;
  /** One post: scored against `criterion` (id or symptom name), or all nine without one. */
  post?: string;
  criterion?: string;
  /** Records to score (the API's list form). */
  inputs?: Iterable<InferInput> | AsyncIterable<InferInput>;
  /** JSONL in and out: predictions and error records are written to `output`, not returned. */
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /**
   * Input records per chunk in streaming mode (bounds memory); default 256. Chunks are counted
   * from the first record, so a resumed stream batches exactly as an uninterrupted one.
   */
  chunkSize?: number;
  /** Streaming: the records an interrupted run already wrote, read past and not scored. */
  skip?: SkipRecords;
  /** Streaming: called once the model is ready, before the first chunk is read. */
  onStart?: () => void;
  /** Streaming: called after each chunk is written, with the last input line it covered. */
  onChunk?: (progress: { line: number; records: number }) => void;
  /**
   * Streaming: aborting it (like Ctrl-C or SIGTERM, which are listened for too) stops after the
   * chunk in hand is written; infer() then rejects with an InferInterruptedError.
   */
  signal?: AbortSignal;
  /** Log an inference run to MLflow; default false. */
  logMlflow?: boolean;
}

export interface InferResult {
  /** Empty in streaming mode (they went to `output`). */
  predictions: Prediction[];
  /** Empty in streaming mode (they went to `output`). */
  errors: ErrorRecord[];
  counts: InferCounts;
  latency: InferLatency;
  model: ModelDescription;
  /** The MLflow inference run, when logged. */
  runId?: string;
}

export class InferUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InferUsageError';
  }
}

/** A stream stopped by an interrupt; every chunk before it is written. */
export class InferInterruptedError extends Error {
  constructor(
    /** The last input line written (0: none). */
    readonly line: number,
    /** Records written by this call (not counting skipped ones). */
    readonly records: number,
  ) {
    super(`interrupted after input line ${line}`);
    this.name = 'InferInterruptedError';
  }
}

/** The number of records per chunk when the caller does not say. */
export const defaultChunkSize = 256;

function modelSource(options: CheckableOptions): ModelSource {
  const given = [
    options.checkpoint !== undefined ? 'checkpoint' : null,
    options.run !== undefined ? 'run' : null,
    options.model !== undefined ? 'model' : null,
  ].filter((x) => x !== null);
  if (given.length !== 1) {
    throw new InferUsageError(
      given.length === 0
        ? 'name the model: --checkpoint <adapter dir>, --run <run id | run dir>[/fold] or --model models:/<name>@<alias>'
        : `give only one of --checkpoint, --run, --model (got ${given.join(', ')})`,
    );
  }
  if (options.checkpoint !== undefined) return { kind: 'checkpoint', dir: options.checkpoint };
  if (options.run !== undefined) return { kind: 'run', ref: options.run };
  if (!/^models:\//.test(options.model!)) {
    throw new InferUsageError(
      `--model ${options.model}: expected models:/<name>@<alias> or models:/<name>/<version>`,
    );
  }
  return { kind: 'registry', uri: options.model! };
}

function inputMode(options: CheckableOptions): 'post' | 'list' | 'stream' {
  const modes = [
    options.post !== undefined ? 'post' : null,
    options.inputs !== undefined ? 'list' : null,
    options.input !== undefined ? 'stream' : null,
  ].filter((x): x is 'post' | 'list' | 'stream' => x !== null);
  if (modes.length !== 1) {
    throw new InferUsageError(
      modes.length === 0
        ? 'nothing to score: give --post "text" (with --criterion or alone) or --input pairs.jsonl'
        : 'give either --post or --input, not both',
    );
  }
  if (modes[0] !== 'post' && options.criterion !== undefined) {
    throw new InferUsageError('--criterion goes with --post; in JSONL each line names its own');
  }
  if (modes[0] === 'stream' && options.output === undefined) {
    throw new InferUsageError('--input needs --output (a file, or - for stdout)');
  }
  return modes[0]!;
}

function checkThreshold(value: number | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new InferUsageError(`--threshold must be a number in [0, 1], got ${value}`);
  }
  return value;
}

/**
 * Collects one sha256 digest per record, in input order ('-' for a record without an id), in a
 * temp file appended chunk by chunk, so a long stream does not hold them all in memory.
 */
class IdDigestSink {
  private pending: string[] = [];
  private constructor(readonly path: string | null) {}

  static async open(enabled: boolean): Promise<IdDigestSink> {
    if (!enabled) return new IdDigestSink(null);
    const dir = await mkdtemp(join(tmpdir(), 'mentallam-infer-'));
    return new IdDigestSink(join(dir, 'input_ids.sha256.txt'));
  }

  note(id: string | number | undefined): void {
    if (this.path) this.pending.push(id === undefined ? '-' : hashId(id));
  }

  async flush(): Promise<void> {
    if (!this.path) return;
    await appendFile(this.path, this.pending.map((d) => `${d}\n`).join(''));
    this.pending = [];
  }

  async remove(): Promise<void> {
    if (this.path) await rm(join(this.path, '..'), { recursive: true, force: true });
  }
}

/** sha256 of an id as text: enough to match records later, nothing to read back. */
export function hashId(id: string | number): string {
  return createHash('sha256').update(String(id)).digest('hex');
}

/** Scores parsed lines (one chunk) and returns predictions in input order. */
async function scoreLines(
  predictor: Predictor,
  lines: readonly ParsedLine[],
  thresholds: ThresholdTable | null,
  override: number | null,
): Promise<{ predictions: Prediction[]; errors: ErrorRecord[] }> {
  const pairs: { line: ParsedLine; criterion: Criterion; ids: number[]; prefixLength: number }[] =
    [];
  const errors: ErrorRecord[] = [];
  for (const line of lines) {
    try {
      // A line's criteria share its post's part of the prompt (one shared-prefix row).
      const { ids, prefixLength } = await predictor.encodePost(line.post, line.criteria);
      line.criteria.forEach((criterion, k) => {
        pairs.push({ line, criterion, ids: ids[k]!, prefixLength });
      });
    } catch (error) {
      // e.g. a post that normalises to nothing; the message names no post text.
      errors.push({
        line: line.line,
        ...(line.id !== undefined ? { id: line.id } : {}),
        error: (error as Error).message,
      });
    }
  }
  const probabilities = await predictor.predict(
    pairs.map((p) => p.ids),
    { posts: pairs.map((p) => p.line.line), prefixLengths: pairs.map((p) => p.prefixLength) },
  );
  const predictions = pairs.map(({ line, criterion }, i): Prediction => {
    const probability = probabilities[i]!;
    const { threshold, origin } = thresholdFor(thresholds, criterion.id, override);
    return {
      line: line.line,
      ...(line.id !== undefined ? { id: line.id } : {}),
      criterion: criterion.id,
      symptom: criterion.symptom,
      probability,
      threshold,
      thresholdOrigin: origin,
      label: probability >= threshold ? 'yes' : 'no',
    };
  });
  return { predictions, errors };
}

/** Predictions and error records in line order (errors in place of the line's predictions). */
function mergeByLine(
  predictions: Prediction[],
  errors: ErrorRecord[],
): (Prediction | ErrorRecord)[] {
  return [...predictions, ...errors].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

function trackingFor(config: Config, cwd: string, options: InferOptions, logger: Logger) {
  return resolveConfiguredTracking(config, {
    cwd,
    logger,
    enabled: true,
    ...(options.env ? { env: options.env } : {}),
  });
}

/** The options as checkInferOptions sees them: only whether an input and output are given. */
type CheckableOptions = Omit<InferOptions, 'input' | 'output'> & {
  input?: unknown;
  output?: unknown;
};

/** What infer() checks before anything loads: the arguments that need no model. */
export interface CheckedInferOptions {
  source: ModelSource;
  mode: 'post' | 'list' | 'stream';
  /** One threshold for every criterion, or null for the model's thresholds. */
  override: number | null;
  /** The --post mode's criterion, resolved (null: all). */
  postCriterion: Criterion | null;
}

/**
 * Checks the arguments that need no model (model source, input form, threshold, --post and its
 * --criterion), so a mistake is reported at once instead of after a model load that can take
 * minutes. Throws InferUsageError.
 */
export function checkInferOptions(
  options: CheckableOptions,
  config: Config,
  cwd: string,
): CheckedInferOptions {
  const source = modelSource(options);
  const mode = inputMode(options);
  const override = checkThreshold(options.threshold ?? config.inference.threshold);
  let postCriterion: Criterion | null = null;
  if (mode === 'post') {
    if (options.post!.trim() === '') throw new InferUsageError('--post is empty');
    if (options.criterion !== undefined) {
      // The nine criteria are the data module's; a run's own copy has the same ids and names.
      const criteria = loadCriteria(resolve(cwd, config.data.criteria_path));
      postCriterion = resolveCriterionOrUsage(criteria, options.criterion);
    }
  }
  return { source, mode, override, postCriterion };
}

/** Scores pairs; see InferOptions for the input forms and model sources. */
export async function infer(options: InferOptions): Promise<InferResult> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const cwd = resolve(options.cwd ?? process.cwd());
  const { config } = await resolveConfig(options);
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const checked = checkInferOptions(options, config, cwd);
  const { source, override } = checked;
  const ensemble = options.ensemble ?? config.inference.ensemble;
  const chunkSize = options.chunkSize ?? defaultChunkSize;

  const needsTracking =
    source.kind === 'registry' ||
    options.logMlflow === true ||
    (source.kind === 'run' && !isLocalRef(options.run!, cwd));
  let tracking: ResolvedTracking | null = options.tracking ?? null;
  const ownsTracking = tracking === null && needsTracking;
  if (ownsTracking) tracking = await trackingFor(config, cwd, options, logger);

  try {
    const { base, cacheDir } = options;
    const client = tracking?.client;
    const resolved = await resolveModel({
      source,
      ensemble,
      base,
      config,
      cwd,
      client,
      cacheDir,
      logger,
    });
    // The prompt, padding and seed the model was trained with decide its inputs.
    const effective = resolved.trainingConfig ?? config;
    const criteria = loadCriteria(resolve(cwd, effective.data.criteria_path));
    const predictor = await Predictor.open({
      resolved,
      config: effective,
      batchSize: config.inference.batch_size,
      criteria,
      ...(options.loadModel ? { loadModel: options.loadModel } : {}),
      logger,
      now,
    });
    const body = async (run: ActiveRun | null): Promise<InferResult> => {
      const digests = await IdDigestSink.open(run !== null);
      try {
        const outcome = await runInference(
          predictor,
          resolved,
          criteria,
          checked,
          options,
          chunkSize,
          digests,
          logger,
        );
        const latency = predictor.latency.figures(now() - started);
        const result: InferResult = { ...outcome, latency, model: resolved.description };
        if (run) {
          result.runId = run.runId;
          await logInferenceRun(run, result, digests);
        }
        logger.info('inference done', {
          records: result.counts.records,
          pairs: result.counts.pairs,
          failed: result.counts.failed,
          msPerPair: Number(latency.msPerPairMean.toFixed(2)),
        });
        return result;
      } finally {
        await digests.remove();
      }
    };
    try {
      if (!options.logMlflow || !tracking) return await body(null);
      return await withParentRun(
        tracking.client,
        {
          experimentName: config.logging.mlflow.experiment_name,
          runName: 'mentallam-infer',
          tags: {
            ...config.logging.mlflow.tags,
            'mentallam.kind': 'inference',
            'mentallam.model.kind': resolved.description.kind,
            ...(resolved.description.modelName
              ? { 'mentallam.model.name': resolved.description.modelName }
              : {}),
            ...(resolved.description.modelVersion
              ? { 'mentallam.model.version': resolved.description.modelVersion }
              : {}),
            ...(resolved.description.runId
              ? { 'mentallam.model.run_id': resolved.description.runId }
              : {}),
          },
          params: inferenceParams(resolved, config, override, ensemble),
          logger,
          gitDir: cwd,
        },
        body,
      );
    } finally {
      predictor.close();
    }
  } finally {
    if (ownsTracking) await tracking?.close();
  }
}

/** A run reference read from disk (a run directory, or one plus /fold) rather than from MLflow. */
function isLocalRef(ref: string, cwd: string): boolean {
  return existsSync(resolve(cwd, ref)) || existsSync(resolve(cwd, splitFoldSuffix(ref).head));
}

function inferenceParams(
  resolved: ResolvedModel,
  config: Config,
  override: number | null,
  ensemble: boolean,
): Record<string, unknown> {
  const d = resolved.description;
  return {
    model_kind: d.kind,
    // Paths and ids only: the model reference never holds post text.
    model_ref: d.ref,
    model_name: d.modelName ?? '',
    model_version: d.modelVersion ?? '',
    model_run_id: d.runId ?? '',
    folds: d.folds.map((f) => (f === null ? 'none' : String(f))).join(','),
    ensemble,
    threshold_override: override === null ? 'none' : override,
    thresholds_source: d.thresholdsSource,
    batch_size: config.inference.batch_size,
  };
}

async function logInferenceRun(run: ActiveRun, result: InferResult, digests: IdDigestSink) {
  const { counts, latency } = result;
  await run.logMetrics([
    { key: 'records', value: counts.records },
    { key: 'pairs', value: counts.pairs },
    { key: 'failed_records', value: counts.failed },
    { key: 'positive_pairs', value: counts.positives },
    { key: 'latency_ms_per_pair_mean', value: latency.msPerPairMean },
    { key: 'latency_ms_per_pair_p50', value: latency.msPerPairP50 },
    { key: 'latency_ms_per_pair_p95', value: latency.msPerPairP95 },
    { key: 'pairs_per_second', value: latency.pairsPerSecond },
    { key: 'wall_seconds', value: latency.wallMs / 1000 },
  ]);
  // One digest per record, in input order: lets a run be matched to its inputs later without
  // storing them.
  await digests.flush();
  if (digests.path && existsSync(digests.path)) await run.logArtifact(digests.path);
}

async function* asAsync<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  yield* items as AsyncIterable<T>;
}

async function runInference(
  predictor: Predictor,
  resolved: ResolvedModel,
  criteria: Criterion[],
  checked: CheckedInferOptions,
  options: InferOptions,
  chunkSize: number,
  digests: IdDigestSink,
  logger: Logger,
): Promise<Omit<InferResult, 'latency' | 'model' | 'runId'>> {
  const { mode, override } = checked;
  const counts: InferCounts = { records: 0, pairs: 0, failed: 0, positives: 0 };
  const tally = (predictions: Prediction[], errors: ErrorRecord[]) => {
    counts.pairs += predictions.length;
    counts.positives += predictions.filter((p) => p.label === 'yes').length;
    counts.failed += errors.length;
  };
  const noteIds = (records: { id?: string | number }[]) => {
    for (const r of records) digests.note(r.id);
  };

  if (mode === 'post') {
    // Checked before the model loaded; found again in the criteria the model was trained with.
    const selected =
      checked.postCriterion !== null
        ? [resolveCriterionOrUsage(criteria, checked.postCriterion.id)]
        : criteria;
    counts.records = 1;
    digests.note(undefined);
    const { predictions, errors } = await scoreLines(
      predictor,
      [{ line: 1, post: options.post!, criteria: selected }],
      resolved.thresholds,
      override,
    );
    if (errors.length > 0) throw new InferUsageError(`--post: ${errors[0]!.error}`);
    tally(predictions, errors);
    return { predictions: predictions.map(({ line: _line, ...p }) => p), errors, counts };
  }

  if (mode === 'list') {
    const predictions: Prediction[] = [];
    const errors: ErrorRecord[] = [];
    let chunk: (ParsedLine | ErrorRecord)[] = [];
    const flush = async () => {
      const valid = chunk.filter((c): c is ParsedLine => !isErrorRecord(c));
      const scored = await scoreLines(predictor, valid, resolved.thresholds, override);
      const bad = [...chunk.filter(isErrorRecord), ...scored.errors];
      tally(scored.predictions, bad);
      predictions.push(...scored.predictions);
      errors.push(...bad);
      chunk = [];
      await digests.flush();
    };
    let index = 0;
    for await (const record of asAsync(options.inputs!)) {
      index += 1;
      counts.records += 1;
      const parsed = validateInput(record, index, criteria);
      noteIds([parsed]);
      chunk.push(parsed);
      if (chunk.length >= chunkSize) await flush();
    }
    if (chunk.length > 0) await flush();
    errors.sort((a, b) => a.line - b.line);
    return { predictions, errors, counts };
  }

  // A stream: chunk by chunk, each written whole before the next is read, so an interrupt (or a
  // kill) loses at most the chunk in hand; the first interrupt stops after it.
  const writer = createJsonlWriter(options.output!);
  const stop = listenForStop(logger, options.signal, 'the chunk in hand');
  options.onStart?.();
  try {
    for await (const lines of readLineChunks(options.input!, chunkSize, options.skip)) {
      counts.records += lines.length;
      const parsed = lines.map((l) => parseInputLine(l, criteria));
      noteIds(parsed.map((p) => (p.id !== undefined ? { id: p.id } : {})));
      const valid = parsed.filter((p): p is ParsedLine => !isErrorRecord(p));
      const scored = await scoreLines(predictor, valid, resolved.thresholds, override);
      const bad = [...parsed.filter(isErrorRecord), ...scored.errors];
      tally(scored.predictions, bad);
      await writer.writeText(
        mergeByLine(scored.predictions, bad)
          .map((record) => `${JSON.stringify(record)}\n`)
          .join(''),
      );
      await digests.flush();
      const lastLine = lines[lines.length - 1]!.line;
      options.onChunk?.({ line: lastLine, records: counts.records });
      if (stop.requested) throw new InferInterruptedError(lastLine, counts.records);
    }
  } finally {
    stop.dispose();
    writer.close();
  }
  return { predictions: [], errors: [], counts };
}

function resolveCriterionOrUsage(criteria: Criterion[], name: string): Criterion {
  try {
    return resolveCriterion(criteria, name);
  } catch (error) {
    throw new InferUsageError((error as Error).message);
  }
}
