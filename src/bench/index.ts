/**
 * `bench()`: CPU latency of the classifier, one pair at a time, on synthetic inputs of given token
 * lengths: warm-up calls (not timed: first-call allocations, lazy initialisation), then timed calls.
 * The clock is injectable, so the gate's decision is tested deterministically; only the real bench
 * reads real time.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import type { Config } from '../config/index.js';
import { findTokenizerSource, openTokenizer, TokenizerError } from '../data/index.js';
import {
  camelCaseKeys,
  createLogger,
  createRng,
  writeFileAtomic,
  writeJsonAtomic,
} from '../infra/index.js';
import { renderPlot } from '../metrics/index.js';
import { RunStore } from '../run/index.js';
import { withParentRun, type ActiveRun } from '../tracking/index.js';
import {
  findModel,
  modelDirectory,
  modelPathExpectation,
  resolveConfig,
  resolveConfiguredTracking,
  tokenizerOptions,
  type ConfigSource,
  type ModelBatch,
} from '../engine/index.js';
import {
  loadNativeModel,
  ModelResolutionError,
  resolveModel,
  type InferenceModel,
  type ModelDescription,
  type LoadModelSpec,
  type ModelReference,
  type ModelRunOptions,
  type ModelSource,
} from '../infer/index.js';
import {
  formatLatencyReport,
  latencyHistogramSpec,
  summarizeLatency,
  type LatencySummary,
} from './stats.js';

export { formatLatencyReport, histogram, latencyHistogramSpec, summarizeLatency } from './stats.js';
export type { HistogramBin, LatencySummary } from './stats.js';

/** The gate applies to inputs up to this many tokens (the longest configured length within it). */
export const GATE_MAX_TOKENS = 256;

/**
 * A model reference names a trained model to time (merged); without one, model.path with fresh
 * DoRA adapters (merged) is timed.
 */
export interface BenchOptions extends ConfigSource, ModelReference, ModelRunOptions {
  /** Defaults: the bench config group. */
  lengths?: number[];
  warmup?: number;
  runs?: number;
  /** libtorch intra-op threads; 0 = libtorch's default. */
  threads?: number;
  /** Rows per call; default 1 (the latency of one pair). */
  batchSize?: number;
  /** Where bench.json and latency_histogram.svg/.png go; default <run_dir>/bench. */
  outDir?: string;
  /** Log to MLflow; default logging.mlflow.enabled. */
  logMlflow?: boolean;
  /** Token ids are drawn from [3, vocabSize); default: the tokenizer's (or config.json's) size. */
  vocabSize?: number;
  /** Override GATE_MAX_TOKENS. */
  gateMaxTokens?: number;
  /** Skip rendering the SVG/PNG (it is the slowest part on a machine without fonts cached). */
  plot?: boolean;
}

export interface BenchGate {
  /** The input length whose p95 is gated. */
  length: number;
  p95: number;
  maxP95Ms: number;
  overLimit: boolean;
  /** bench.allow_slow.reason when set. */
  allowSlowReason: string | null;
  passed: boolean;
}

export interface BenchResult {
  summaries: LatencySummary[];
  gate: BenchGate;
  /** 0 when the gate passed, 1 otherwise. */
  exitCode: number;
  /** latency_cpu_ms_p50 / _p95: the gated length's figures. */
  headline: { latency_cpu_ms_p50: number; latency_cpu_ms_p95: number };
  report: string;
  threads: number | null;
  device: string;
  dtype: string;
  model: ModelDescription | { kind: 'base'; ref: string };
  outDir: string;
  files: string[];
  runId?: string;
}

/** The length the gate looks at: the longest one within maxTokens, else the shortest. */
export function gatedLength(lengths: readonly number[], maxTokens = GATE_MAX_TOKENS): number {
  if (lengths.length === 0) throw new RangeError('no bench lengths');
  const within = lengths.filter((l) => l <= maxTokens);
  return within.length > 0 ? Math.max(...within) : Math.min(...lengths);
}

/** Pass/fail of a bench: p95 over the limit fails unless a reason for allowing it was recorded. */
export function evaluateGate(
  summaries: readonly LatencySummary[],
  bench: Pick<Config['bench'], 'max_p95_ms' | 'allow_slow'>,
  maxTokens = GATE_MAX_TOKENS,
): BenchGate {
  const length = gatedLength(
    summaries.map((s) => s.length),
    maxTokens,
  );
  const summary = summaries.find((s) => s.length === length)!;
  const overLimit = summary.p95 > bench.max_p95_ms;
  const reason = bench.allow_slow.reason?.trim() ? bench.allow_slow.reason.trim() : null;
  return {
    length,
    p95: summary.p95,
    maxP95Ms: bench.max_p95_ms,
    overLimit,
    allowSlowReason: reason,
    passed: !overLimit || reason !== null,
  };
}

/** One synthetic input: BOS (when the model has one) then seeded random ids, no padding. */
export function syntheticBatch(
  length: number,
  vocabSize: number,
  rng: () => number,
  options: { bosTokenId?: number | null; batchSize?: number } = {},
): ModelBatch {
  const batchSize = options.batchSize ?? 1;
  const inputIds = new Int32Array(batchSize * length);
  // Ids 0-2 are <unk>, <s>, </s> in Llama tokenizers; everything above is ordinary text.
  const low = Math.min(3, vocabSize - 1);
  for (let i = 0; i < inputIds.length; i++) {
    inputIds[i] = low + Math.floor(rng() * (vocabSize - low));
  }
  if (options.bosTokenId !== undefined && options.bosTokenId !== null) {
    for (let b = 0; b < batchSize; b++) inputIds[b * length] = options.bosTokenId;
  }
  return {
    inputIds,
    attentionMask: new Uint8Array(batchSize * length).fill(1),
    batchSize,
    seqLen: length,
  };
}

function checkPositiveInts(name: string, values: readonly number[], min = 1): void {
  for (const v of values) {
    if (!Number.isInteger(v) || v < min)
      throw new RangeError(`${name} must be integers >= ${min}, got ${v}`);
  }
}

function modelSourceOf(options: BenchOptions): ModelSource | null {
  const given = [options.checkpoint, options.run, options.model].filter((x) => x !== undefined);
  if (given.length > 1) throw new Error('give at most one of --checkpoint, --run, --model');
  if (options.checkpoint !== undefined) return { kind: 'checkpoint', dir: options.checkpoint };
  if (options.run !== undefined) return { kind: 'run', ref: options.run };
  if (options.model !== undefined) return { kind: 'registry', uri: options.model };
  return null;
}

/**
 * The id range and BOS of the synthetic inputs, and the pad id the model pools with: from the
 * model's tokenizer (tokenizer.json, tokenizer.model or a GGUF's metadata) as training reads it,
 * else (a checkpoint without one) from config.json.
 */
async function vocabularyOf(
  modelPath: string,
  config: Config,
): Promise<{ vocabSize: number; bosTokenId: number | null; padTokenId: number }> {
  let hasTokenizer = true;
  try {
    findTokenizerSource(modelPath);
  } catch (error) {
    if (!(error instanceof TokenizerError)) throw error;
    hasTokenizer = false;
  }
  if (hasTokenizer) {
    const tokenizer = await openTokenizer(modelPath, tokenizerOptions(config));
    return {
      vocabSize: tokenizer.vocabSize,
      bosTokenId: tokenizer.addBos ? tokenizer.bosTokenId : null,
      padTokenId: tokenizer.padTokenId,
    };
  }
  const modelConfig = JSON.parse(await readFile(join(modelPath, 'config.json'), 'utf8')) as {
    vocab_size?: number;
    bos_token_id?: number;
    pad_token_id?: number;
  };
  if (typeof modelConfig.vocab_size !== 'number')
    throw new Error(`${modelPath}/config.json has no vocab_size`);
  return {
    vocabSize: modelConfig.vocab_size,
    bosTokenId: modelConfig.bos_token_id ?? null,
    padTokenId: config.model.pad_token_id ?? modelConfig.pad_token_id ?? 0,
  };
}

interface NativeThreads {
  setNumThreads(n: number): void;
  nativeInfo(): { threads: number };
}

export async function bench(options: BenchOptions = {}): Promise<BenchResult> {
  const now = options.now ?? (() => performance.now());
  const cwd = resolve(options.cwd ?? process.cwd());
  const { config } = await resolveConfig(options);
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const lengths = [...(options.lengths ?? config.bench.lengths)];
  const warmup = options.warmup ?? config.bench.warmup;
  const runs = options.runs ?? config.bench.runs;
  const threads = options.threads ?? config.bench.threads;
  const batchSize = options.batchSize ?? 1;
  checkPositiveInts('bench lengths', lengths);
  checkPositiveInts('bench runs', [runs]);
  checkPositiveInts('bench warmup', [warmup], 0);
  checkPositiveInts('bench threads', [threads], 0);
  checkPositiveInts('batch size', [batchSize]);
  const outDir = resolve(
    cwd,
    options.outDir ?? new RunStore(resolve(cwd, config.run_dir)).benchDir,
  );
  const logMlflow = options.logMlflow ?? config.logging.mlflow.enabled;

  // Threads first: libtorch fixes its pool size at the first parallel operation.
  let threadsUsed: number | null = null;
  if (!options.loadModel || threads > 0) {
    const native = (await import('../native.js')) as unknown as NativeThreads;
    if (threads > 0) native.setNumThreads(threads);
    threadsUsed = native.nativeInfo().threads;
  }

  const source = modelSourceOf(options);
  const needsTracking =
    logMlflow ||
    source?.kind === 'registry' ||
    (source?.kind === 'run' && !existsSync(resolve(cwd, source.ref)));
  let tracking = options.tracking ?? null;
  const ownsTracking = tracking === null && needsTracking;
  if (ownsTracking) {
    tracking = await resolveConfiguredTracking(config, {
      cwd,
      logger,
      enabled: true,
      ...(options.env ? { env: options.env } : {}),
    });
  }

  // The bench is about the CPU: the model is loaded there whatever model.device says, in float32
  // unless a dtype is set explicitly (bf16 matmuls are slow on most CPUs).
  const device = 'cpu';
  const dtype = config.model.dtype === 'auto' ? 'float32' : config.model.dtype;
  let model: InferenceModel | null = null;
  try {
    let modelDir: string;
    let description: BenchResult['model'];
    let dora: LoadModelSpec['dora'] = camelCaseKeys(config.model.dora);
    let adapterDir: string | null = null;
    // The config the model's inputs follow: a trained model's own (its pad token), else this one.
    let modelConfig = config;
    if (source) {
      const { base, cacheDir } = options;
      const client = tracking?.client;
      const resolved = await resolveModel({ source, base, config, cwd, client, cacheDir, logger });
      modelDir = resolved.baseModelDir;
      adapterDir = resolved.adapters[0]!.dir;
      const { baseModelNameOrPath: _base, ...settings } = resolved.adapters[0]!.settings;
      dora = settings;
      description = resolved.description;
      modelConfig = resolved.trainingConfig ?? config;
    } else if (options.base !== undefined) {
      modelDir = resolve(cwd, options.base);
      if (!findModel(modelDir)) {
        throw new ModelResolutionError(
          `--base ${options.base}: no model there (expected ${modelPathExpectation})`,
        );
      }
      description = { kind: 'base', ref: modelDir };
    } else {
      // model.path, the tiny model created there on first use as training does.
      modelDir = await modelDirectory(config, cwd, logger);
      description = { kind: 'base', ref: modelDir };
    }
    const vocab = await vocabularyOf(modelDir, modelConfig);
    if (options.vocabSize) vocab.vocabSize = options.vocabSize;
    const loadModel = options.loadModel ?? loadNativeModel;
    model = await loadModel({
      modelDir,
      dora,
      numLabels: modelConfig.model.num_labels,
      device,
      dtype,
      seed: config.seed,
      padTokenId: vocab.padTokenId,
    });
    if (adapterDir) await model.loadAdapter(adapterDir);
    // Merged, as inference runs it: the adapter adds no cost per token.
    await model.merge();

    const rng = createRng(config.seed);
    const summaries: LatencySummary[] = [];
    for (const length of lengths) {
      const batch = syntheticBatch(length, vocab.vocabSize, rng, {
        bosTokenId: vocab.bosTokenId,
        batchSize,
      });
      for (let i = 0; i < warmup; i++) await model.predictProba(batch);
      const samples: number[] = [];
      for (let i = 0; i < runs; i++) {
        const began = now();
        await model.predictProba(batch);
        samples.push(now() - began);
      }
      const summary = summarizeLatency(length, samples);
      summaries.push(summary);
      logger.info('bench length done', {
        length,
        p50: Number(summary.p50.toFixed(2)),
        p95: Number(summary.p95.toFixed(2)),
      });
    }
    const gate = evaluateGate(summaries, config.bench, options.gateMaxTokens);
    const gated = summaries.find((s) => s.length === gate.length)!;
    const report = formatLatencyReport(summaries);
    const result: BenchResult = {
      summaries,
      gate,
      exitCode: gate.passed ? 0 : 1,
      headline: { latency_cpu_ms_p50: gated.p50, latency_cpu_ms_p95: gated.p95 },
      report,
      threads: threadsUsed,
      device,
      dtype,
      model: description,
      outDir,
      files: [],
    };
    await mkdir(outDir, { recursive: true });
    const jsonPath = join(outDir, 'bench.json');
    await writeJsonAtomic(jsonPath, {
      summaries,
      gate,
      headline: result.headline,
      warmup,
      runs,
      batchSize,
      threads: threadsUsed,
      device,
      dtype,
      model: description,
    });
    result.files.push(jsonPath);
    if (options.plot !== false) {
      const rendered = await renderPlot(
        latencyHistogramSpec(summaries, { maxP95Ms: config.bench.max_p95_ms }),
      );
      const svgPath = join(outDir, 'latency_histogram.svg');
      const pngPath = join(outDir, 'latency_histogram.png');
      await writeFileAtomic(svgPath, rendered.svg);
      await writeFileAtomic(pngPath, rendered.png);
      result.files.push(svgPath, pngPath);
    }
    if (logMlflow && tracking) {
      await withParentRun(
        tracking.client,
        {
          experimentName: config.logging.mlflow.experiment_name,
          runName: 'mentallam-bench',
          tags: {
            ...config.logging.mlflow.tags,
            'mentallam.kind': 'bench',
            'mentallam.bench.gate': gate.passed
              ? gate.overLimit
                ? 'allowed_slow'
                : 'passed'
              : 'failed',
            ...(gate.allowSlowReason
              ? { 'mentallam.bench.allow_slow_reason': gate.allowSlowReason }
              : {}),
          },
          params: {
            lengths: lengths.join(','),
            warmup,
            runs,
            threads: threadsUsed ?? threads,
            batch_size: batchSize,
            device,
            dtype,
            max_p95_ms: config.bench.max_p95_ms,
            gated_length: gate.length,
            model_kind: description.kind,
            model_ref: description.ref,
          },
          logger,
          gitDir: cwd,
        },
        async (run: ActiveRun) => {
          result.runId = run.runId;
          await run.logMetrics([
            { key: 'latency_cpu_ms_p50', value: gated.p50 },
            { key: 'latency_cpu_ms_p95', value: gated.p95 },
            ...summaries.flatMap((s) =>
              (['p50', 'p95', 'p99', 'mean', 'max'] as const).map((stat) => ({
                key: `latency_cpu_ms_${stat}_len${s.length}`,
                value: s[stat],
              })),
            ),
          ]);
          for (const file of result.files) await run.logArtifact(file, 'bench');
        },
      );
    }
    return result;
  } finally {
    model?.dispose();
    if (ownsTracking) await tracking?.close();
  }
}
