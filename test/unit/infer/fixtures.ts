// Test fixtures for inference: a tiny trained tokenizer in a "base model" directory, adapters and
// run directories in the training layout, and a fake model whose score is a pure function of the
// unpadded ids and the loaded adapter (so batching and padding cannot change it).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { Command, CommanderError } from 'commander';

import { configToYaml, loadConfig, type Config } from '../../../src/config/index.js';
import { trainTinyTokenizer } from '../../../src/data/index.js';
import type { InferenceModel, LoadModelSpec, ModelLoader } from '../../../src/infer/index.js';
import type { ModelBatch } from '../../../src/engine/examples.js';
import { fixtureAggregate, fixtureFoldMetrics, fixtureFoldThresholds } from '../run/fixtures.js';

export const corpus = [
  'I cannot sleep at night and I wake up tired every morning',
  'Nothing is fun anymore, I stopped playing music and seeing friends',
  'I feel worthless and guilty about everything I do',
  'post: criterion: Does the post match the criterion description? Output yes or no',
  'The person feels down, empty or without hope for much of the day on most days',
  'I have no energy and I am tired all the time, even small tasks wear me out',
];

/** A base model directory holding only what inference reads besides the weights. */
export async function makeBaseDir(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const { vocabSize } = await trainTinyTokenizer({
    corpus: [...corpus, ...corpus],
    vocabSize: 400,
    outDir: dir,
  });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ vocab_size: vocabSize }));
  return dir;
}

/** An adapter in peft's layout; the fake model reads its "weights" file as a score offset. */
export function makeAdapter(dir: string, baseDir: string, offset: number): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      task_type: 'SEQ_CLS',
      use_dora: true,
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.05,
      target_modules: ['v_proj', 'q_proj'],
      use_rslora: false,
      base_model_name_or_path: baseDir,
    }),
  );
  writeFileSync(join(dir, 'adapter_model.safetensors'), String(offset));
  return dir;
}

/** A fold's thresholds.json as training writes it. */
export function thresholdsFile(
  global: number,
  perCriterion: Record<string, number> = {},
  fold = 0,
): string {
  return JSON.stringify(fixtureFoldThresholds(fold, global, perCriterion));
}

/** A fold's metrics.json whose early-stopping value on validation was `bestValidation`. */
export function metricsFile(bestValidation: number): string {
  return JSON.stringify(fixtureFoldMetrics({ bestValidation }));
}

/** aggregate.json naming the best fold, as `mentallam aggregate` leaves it. */
export function aggregateFile(bestFold: number): string {
  return JSON.stringify(fixtureAggregate(bestFold));
}

/** A run directory like trainFolds writes: config.yaml, fold_i/{best_adapter, thresholds.json}. */
export function makeRunDir(
  runDir: string,
  baseDir: string,
  config: Config,
  folds: { offset: number; threshold: number; validation: number }[],
): string {
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'config.yaml'), configToYaml(config));
  folds.forEach((fold, i) => {
    makeAdapter(join(runDir, `fold_${i}`, 'best_adapter'), baseDir, fold.offset);
    writeFileSync(
      join(runDir, `fold_${i}`, 'thresholds.json'),
      thresholdsFile(fold.threshold, {}, i),
    );
    writeFileSync(join(runDir, `fold_${i}`, 'metrics.json'), metricsFile(fold.validation));
  });
  // Not aggregated yet (no aggregate.json): the best inner-validation value decides.
  return runDir;
}

export interface FakeModelLog {
  loads: LoadModelSpec[];
  adapters: string[];
  merges: number;
  /** Rows, columns and (shared-prefix rows) segments of each model call. */
  batches: { batchSize: number; seqLen: number; segments?: number }[];
  disposed: number;
}

/** sigmoid(f(ids) + offset): deterministic, independent of padding and batch composition. */
export function fakeScore(ids: readonly number[], offset: number): number {
  let h = 0;
  for (const id of ids) h = (h * 31 + id) % 1009;
  return 1 / (1 + Math.exp(-((h - 504) / 200 + offset)));
}

/**
 * The sequences a batch holds: one per row, or with segments (shared-prefix rows) one per
 * segment, each its row's shared part followed by the segment.
 */
export function sequencesOf(batch: ModelBatch): number[][] {
  const row = (b: number) => {
    const ids: number[] = [];
    for (let t = 0; t < batch.seqLen; t++) {
      if (batch.attentionMask[b * batch.seqLen + t])
        ids.push(batch.inputIds[b * batch.seqLen + t]!);
    }
    return ids;
  };
  if (!batch.segments) return Array.from({ length: batch.batchSize }, (_, b) => row(b));
  const { prefixLengths, segmentCounts, segmentLengths } = batch.segments;
  const out: number[][] = [];
  let segment = 0;
  for (let b = 0; b < batch.batchSize; b++) {
    const ids = row(b);
    let start = prefixLengths[b]!;
    for (let k = 0; k < segmentCounts[b]!; k++, segment++) {
      const length = segmentLengths[segment]!;
      out.push([...ids.slice(0, prefixLengths[b]!), ...ids.slice(start, start + length)]);
      start += length;
    }
  }
  return out;
}

export function fakeLoader(log: FakeModelLog = newLog()): ModelLoader {
  return async (spec) => {
    log.loads.push(spec);
    let offset = 0;
    const model: InferenceModel = {
      async loadAdapter(dir: string) {
        log.adapters.push(dir);
        offset = Number(readFileSync(join(dir, 'adapter_model.safetensors'), 'utf8'));
      },
      merge() {
        log.merges += 1;
      },
      async predictProba(batch: ModelBatch) {
        log.batches.push({
          batchSize: batch.batchSize,
          seqLen: batch.seqLen,
          ...(batch.segments ? { segments: batch.segments.segmentLengths.length } : {}),
        });
        return Float32Array.from(sequencesOf(batch), (ids) => fakeScore(ids, offset));
      },
      dispose() {
        log.disposed += 1;
      },
    };
    return model;
  };
}

export function newLog(): FakeModelLog {
  return { loads: [], adapters: [], merges: 0, batches: [], disposed: 0 };
}

export async function testConfig(overrides: string[] = []): Promise<Config> {
  return (
    await loadConfig({
      overrides: [
        'model=tiny',
        'training=default',
        'logging.mlflow.enabled=false',
        'logging.level=error',
        ...overrides,
      ],
      env: {},
    })
  ).config;
}

export function captureIo() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  return {
    io: { stdout, stderr, stdin, env: { MENTALLAM_LOG_LEVEL: 'error' } as NodeJS.ProcessEnv },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

/** Runs a program the way runCli does: CommanderError -> its code (2 for usage), Error -> 1. */
export async function runProgram(program: Command, argv: string[], stderr: NodeJS.WritableStream) {
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    stderr.write(`mentallam: ${(error as Error).message}\n`);
    return 1;
  }
}
