/**
 * The fold trainer: trains the adapter of one outer fold on its inner train part, evaluates on
 * the inner validation part (early stopping, best adapter), saves a checkpoint when asked to stop
 * and continues from one. It reports through events only; it knows nothing of tracking, and
 * where its files go is the run store's.
 */
import { mkdir, rm } from 'node:fs/promises';

import type { Config } from '../config/index.js';
import { createRng, type CamelCased } from '../infra/index.js';
import type { EvaluationEntry, FoldCheckpointState, FoldStore } from '../run/index.js';
import { planEpochBatches, planPostBatches, postsPerMicroBatch } from './batching.js';
import { EarlyStopping } from './earlyStopping.js';
import type { TrainEventListener } from './events.js';
import {
  collateBatch,
  collateSharedBatch,
  exampleLength,
  hasSharedPrefix,
  packedLength,
  runsByPost,
  type ModelBatch,
  type TokenizedExamples,
} from './examples.js';
import { withFrozenRows, type FrozenRows } from './frozenCache.js';
import { learningRateAt } from './schedule.js';

/** What a train step returns. */
export interface StepResult {
  loss: number;
  gradNorm: number;
  /**
   * A data-parallel model (distributed/dataParallelModel.ts) trains only this rank's share of
   * the step's micro-batches; with the step's last one it returns the totals over every rank,
   * which replace what the fold trainer summed itself.
   */
  stepTotals?: { lossSum: number; exampleSum: number; tokens: number };
}

/** What the fold trainer needs from a model; the native Classifier provides it. */
export interface FoldModel {
  trainStep(
    batch: ModelBatch,
    options: {
      lr: number;
      weightDecay: number;
      maxGradNorm: number;
      accumulate: boolean;
      posWeight?: number;
    },
  ): Promise<StepResult>;
  predictProba(batch: ModelBatch): Promise<Float32Array>;
  saveAdapter(dir: string): Promise<void>;
  loadAdapter(dir: string): Promise<void>;
  /** Drops gradients accumulated since the last optimizer step (before an out-of-memory retry). */
  discardGradients(): Promise<void>;
}

/**
 * training.* of the config (camelCased, every key but the run-level `threads`, `folds`,
 * `frozen_cache` and `distributed`) and what the run resolved: a new training key reaches the
 * trainer without being mapped by hand.
 */
export type FoldTrainingOptions = Omit<
  CamelCased<Config['training']>,
  'threads' | 'folds' | 'frozenCache' | 'distributed'
> & {
  inferenceBatchSize: number;
  padTokenId: number;
  paddingSide: 'right' | 'left';
  /** On CUDA: halve the micro-batch and double accumulation when a step runs out of memory. */
  outOfMemoryBackoff: boolean;
  /**
   * With shared-prefix examples (examples.prefixLengths): true (default) = one row per post, its
   * shared part computed once for all its criteria; false = the same post-grouped batches
   * collated as one row per example (the reference the parity tests compare against).
   */
  sharedPrefix?: boolean;
};

/** Micro-batches are drawn from windows of this many length-sorted batches (length_bucketing). */
export const lengthBucketWindow = 16;

export interface FoldData {
  examples: TokenizedExamples;
  labels: Uint8Array;
  trainIndices: number[];
  validationIndices: number[];
  /** The frozen-bottom cache: batches start at its layer (see frozenCache.ts). */
  frozen?: FrozenRows | null;
}

/** Scores validation predictions into the early-stopping metric (e.g. F1 at the tuned threshold). */
export type ValidationScorer = (
  indices: number[],
  scores: Float32Array,
) => { value: number; metrics: Record<string, number> };

export interface FoldTrainingResult {
  bestAdapterDir: string;
  bestStep: number;
  bestValue: number | null;
  steps: number;
  epochsRun: number;
  stoppedEarly: boolean;
  /** One entry per evaluation: validation metrics, the early-stopping value, mean train loss since the last one. */
  history: EvaluationEntry[];
}

export interface FoldTrainerHooks {
  fold: number;
  /** Receives step, evaluation, early-stop and out-of-memory events; awaited, in order. */
  onEvent?: TrainEventListener;
  /** Returns true when an interrupt asked the run to stop after the current step. */
  shouldStop?: () => boolean;
  /** Seed for the batch order; the fold trainer counts draws so a resume can replay them. */
  seed: number;
  /**
   * Called before each optimizer step: the engine reseeds libtorch from (fold, step) so dropout
   * masks do not depend on how many steps ran in this process (exact resume).
   */
  beforeStep?: (step: number) => void;
  /** Continue from the checkpoint an interrupted run saved in the fold's checkpoint/. */
  resume?: boolean;
}

/** A seeded uniform RNG that counts its draws, so its position can be saved and replayed. */
export function countingRng(seed: number): {
  next: () => number;
  draws: () => number;
  skip: (n: number) => void;
} {
  const rng = createRng(seed);
  let count = 0;
  return {
    next: () => {
      count += 1;
      return rng();
    },
    draws: () => count,
    skip: (n: number) => {
      for (let i = 0; i < n; i++) {
        rng();
        count += 1;
      }
    },
  };
}

export class NonFiniteLossError extends Error {
  constructor(
    readonly fold: number,
    readonly step: number,
  ) {
    super(
      `fold ${fold}: the training loss became NaN/Inf at step ${step}; stopping this fold (lower training.lr?)`,
    );
  }
}

export class TrainingInterruptedError extends Error {
  constructor(
    readonly fold: number,
    readonly step: number,
  ) {
    super(`fold ${fold}: interrupted at step ${step}`);
  }
}

/**
 * Micro-batches per epoch. Plain examples: ceil(examples / micro_batch_size). Shared-prefix
 * examples are batched by whole posts (postsPerMicroBatch), so: ceil(posts / posts per batch).
 */
export function microBatchesPerEpoch(
  examples: TokenizedExamples,
  trainIndices: readonly number[],
  options: Pick<FoldTrainingOptions, 'microBatchSize'>,
): number {
  if (!hasSharedPrefix(examples)) return Math.ceil(trainIndices.length / options.microBatchSize);
  const posts = groupByPost(examples, trainIndices);
  const perPost = Math.max(...posts.map((post) => post.length));
  return Math.ceil(posts.length / postsPerMicroBatch(options.microBatchSize, perPost));
}

export function optimizerStepsPerEpoch(microBatches: number, options: FoldTrainingOptions): number {
  return Math.ceil(microBatches / accumulationSteps(options));
}

/**
 * Optimizer steps a fold runs unless it stops early: epochs x steps per epoch, capped by
 * maxSteps. `microBatches` per epoch: microBatchesPerEpoch.
 */
export function plannedSteps(microBatches: number, options: FoldTrainingOptions): number {
  const perEpoch = optimizerStepsPerEpoch(microBatches, options);
  const steps = perEpoch * options.maxEpochs;
  return Math.max(1, options.maxSteps === null ? steps : Math.min(options.maxSteps, steps));
}

/**
 * Positions into `indices` grouped by post (first appearance order, order kept within a post);
 * every example its own group when the examples have no posts.
 */
export function groupByPost(examples: TokenizedExamples, indices: readonly number[]): number[][] {
  const posts = examples.posts;
  if (!posts) return indices.map((_, position) => [position]);
  const groups = new Map<number, number[]>();
  indices.forEach((index, position) => {
    const post = posts[index]!;
    const group = groups.get(post);
    if (group) group.push(position);
    else groups.set(post, [position]);
  });
  return [...groups.values()];
}

/**
 * A micro-batch of examples as the model takes it: shared-prefix rows when the examples allow;
 * with the frozen-bottom cache, always shared-prefix rows (one per sequence for examples
 * encoded whole) that read their states from it.
 */
export function collateExamples(
  examples: TokenizedExamples,
  indices: readonly number[],
  options: Pick<FoldTrainingOptions, 'padTokenId' | 'paddingSide' | 'sharedPrefix'> & {
    labels?: ArrayLike<number>;
  },
  frozen?: FrozenRows | null,
): ModelBatch {
  if (frozen) {
    return withFrozenRows(
      collateSharedBatch(examples, indices, options),
      examples,
      indices,
      frozen,
    );
  }
  if (hasSharedPrefix(examples) && options.sharedPrefix !== false) {
    return collateSharedBatch(examples, indices, options);
  }
  return collateBatch(examples, indices, options);
}

/**
 * Splits a micro-batch into `parts` smaller ones for the out-of-memory back-off: by whole posts
 * while there are enough, else by examples (a post's criteria then span two rows, each with
 * the post's shared part).
 */
export function splitMicroBatch(
  examples: TokenizedExamples,
  indices: readonly number[],
  parts: number,
): number[][] {
  const runs = runsByPost(examples, indices);
  if (runs.length >= parts) return splitEvenly(runs, parts).map((chunk) => chunk.flat());
  return splitEvenly(indices, parts);
}

/** The code the addon gives an allocator failure (CUDA out of memory, or the CPU allocator's). */
export const outOfMemoryCode = 'ERR_NATIVE_OOM';

export function isOutOfMemory(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === outOfMemoryCode;
}

/** Splits a list into `parts` chunks whose sizes differ by at most one (no empty chunk). */
export function splitEvenly<T>(items: readonly T[], parts: number): T[][] {
  const count = Math.min(parts, items.length);
  const chunks: T[][] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const size = Math.floor(items.length / count) + (i < items.length % count ? 1 : 0);
    chunks.push(items.slice(start, start + size));
    start += size;
  }
  return chunks;
}

export function accumulationSteps(options: FoldTrainingOptions): number {
  return Math.max(1, Math.round(options.effectiveBatchSize / options.microBatchSize));
}

/**
 * Predicts P(label = 1) for the given examples in length-sorted batches (less padding); with
 * shared-prefix examples, batches of whole posts (about inferenceBatchSize examples each).
 */
export async function predictIndices(
  model: FoldModel,
  examples: TokenizedExamples,
  indices: readonly number[],
  options: Pick<
    FoldTrainingOptions,
    'inferenceBatchSize' | 'padTokenId' | 'paddingSide' | 'sharedPrefix'
  >,
  frozen?: FrozenRows | null,
): Promise<Float32Array> {
  const scores = new Float32Array(indices.length);
  let chunks: number[][];
  if (hasSharedPrefix(examples)) {
    const posts = groupByPost(examples, indices).map((positions) => ({
      positions,
      length: packedLength(
        examples,
        positions.map((p) => indices[p]!),
      ),
    }));
    posts.sort((a, b) => a.length - b.length || a.positions[0]! - b.positions[0]!);
    const perPost = Math.max(1, ...posts.map((post) => post.positions.length));
    const size = postsPerMicroBatch(options.inferenceBatchSize, perPost);
    chunks = [];
    for (let start = 0; start < posts.length; start += size) {
      chunks.push(posts.slice(start, start + size).flatMap((post) => post.positions));
    }
  } else {
    const order = indices
      .map((exampleIndex, position) => ({ exampleIndex, position }))
      .sort(
        (a, b) => exampleLength(examples, a.exampleIndex) - exampleLength(examples, b.exampleIndex),
      )
      .map((entry) => entry.position);
    chunks = [];
    for (let start = 0; start < order.length; start += options.inferenceBatchSize) {
      chunks.push(order.slice(start, start + options.inferenceBatchSize));
    }
  }
  for (const chunk of chunks) {
    const batch = collateExamples(
      examples,
      chunk.map((position) => indices[position]!),
      options,
      frozen,
    );
    const probabilities = await model.predictProba(batch);
    chunk.forEach((position, row) => {
      scores[position] = probabilities[row]!;
    });
  }
  return scores;
}

export async function trainFold(
  model: FoldModel,
  data: FoldData,
  options: FoldTrainingOptions,
  files: FoldStore,
  scoreValidation: ValidationScorer,
  hooks: FoldTrainerHooks,
): Promise<FoldTrainingResult> {
  const { fold, onEvent } = hooks;
  const accumulation = accumulationSteps(options);
  const microBatches = microBatchesPerEpoch(data.examples, data.trainIndices, options);
  const stepsPerEpoch = optimizerStepsPerEpoch(microBatches, options);
  const totalSteps = plannedSteps(microBatches, options);
  const warmupSteps = Math.round(options.warmupRatio * totalSteps);
  const evalEvery = options.evalEverySteps > 0 ? options.evalEverySteps : stepsPerEpoch;
  const stopping = new EarlyStopping(options.earlyStopping);
  const { bestAdapterDir, checkpointDir } = files;
  await mkdir(files.dir, { recursive: true });
  const trainLabels = data.labels;
  const history: FoldTrainingResult['history'] = [];
  const trainLengths = data.trainIndices.map((i) => exampleLength(data.examples, i));
  // Shared-prefix examples train in batches of whole posts (so a post's shared part is computed
  // once per batch); plain ones in batches of examples.
  const trainPosts = hasSharedPrefix(data.examples)
    ? groupByPost(data.examples, data.trainIndices)
    : null;
  const trainPostLengths = trainPosts?.map((positions) =>
    packedLength(
      data.examples,
      positions.map((p) => data.trainIndices[p]!),
    ),
  );
  const postsPerBatch = trainPosts
    ? postsPerMicroBatch(options.microBatchSize, Math.max(...trainPosts.map((p) => p.length)))
    : 0;

  let step = 0;
  let epoch = 0;
  let stoppedEarly = false;
  let bestStep = 0;
  let lossSinceEvaluation = { sum: 0, count: 0 };
  let firstBatch = 0;
  let microSplit = 1;
  const rng = countingRng(hooks.seed);
  const saved = hooks.resume ? await files.checkpointState.readIfExists() : null;
  if (saved) {
    await model.loadAdapter(checkpointDir);
    step = saved.step;
    epoch = saved.epoch;
    firstBatch = saved.nextBatch;
    bestStep = saved.bestStep;
    history.push(...saved.history);
    lossSinceEvaluation = { ...saved.lossSinceEvaluation };
    stopping.restore(saved.earlyStopping);
    rng.skip(saved.rngDrawsAtEpochStart);
  }

  const evaluate = async (): Promise<boolean> => {
    const scores = await predictIndices(
      model,
      data.examples,
      data.validationIndices,
      options,
      data.frozen,
    );
    const { value, metrics } = scoreValidation(data.validationIndices, scores);
    const decision = stopping.update(value, step);
    const state = stopping.snapshot();
    const trainLoss =
      lossSinceEvaluation.count > 0
        ? lossSinceEvaluation.sum / lossSinceEvaluation.count
        : undefined;
    lossSinceEvaluation.sum = 0;
    lossSinceEvaluation.count = 0;
    history.push({ step, value, ...(trainLoss !== undefined ? { trainLoss } : {}), metrics });
    if (decision.improved) {
      bestStep = step;
      await rm(bestAdapterDir, { recursive: true, force: true });
      await model.saveAdapter(bestAdapterDir);
    }
    await onEvent?.({
      type: 'evaluation',
      fold,
      step,
      metric: 'validation',
      value,
      metrics,
      best: state.best,
      improved: decision.improved,
      evaluationsWithoutImprovement: state.evaluationsWithoutImprovement,
    });
    return decision.shouldStop;
  };

  const saveCheckpoint = async (nextBatch: number, rngDrawsAtEpochStart: number) => {
    await rm(checkpointDir, { recursive: true, force: true });
    await model.saveAdapter(checkpointDir);
    const state: FoldCheckpointState = {
      step,
      epoch,
      nextBatch,
      rngDrawsAtEpochStart,
      earlyStopping: stopping.snapshot(),
      bestStep,
      history,
      lossSinceEvaluation,
    };
    await files.checkpointState.write(state);
  };

  training: while (step < totalSteps && epoch < options.maxEpochs) {
    const rngDrawsAtEpochStart = rng.draws();
    const bucketWindow = options.lengthBucketing ? lengthBucketWindow : 0;
    const plan = trainPosts
      ? planPostBatches(trainPosts, trainPostLengths!, {
          postsPerBatch,
          bucketWindow,
          rng: rng.next,
        })
      : planEpochBatches(trainLengths, {
          microBatchSize: options.microBatchSize,
          bucketWindow,
          rng: rng.next,
        });
    const startBatch = firstBatch;
    firstBatch = 0;
    for (let start = startBatch; start < plan.length && step < totalSteps; start += accumulation) {
      hooks.beforeStep?.(step);
      const group = plan.slice(start, start + accumulation);
      const started = performance.now();
      let lossSum = 0;
      let exampleSum = 0;
      let tokens = 0;
      let gradNorm = 0;
      const lr = learningRateAt(step, {
        peakLr: options.lr,
        warmupSteps,
        totalSteps,
        schedule: options.lrSchedule,
      });
      // Each planned micro-batch runs as `microSplit` chunks; an out-of-memory error on CUDA
      // doubles the split (halves the micro-batch, doubles accumulation) and retries the group,
      // so the effective batch and the gradient (a mean over chunks) stay the same.
      for (;;) {
        const chunks = group.flatMap((micro) =>
          splitMicroBatch(
            data.examples,
            micro.map((position) => data.trainIndices[position]!),
            microSplit,
          ),
        );
        try {
          for (let c = 0; c < chunks.length; c++) {
            const indices = chunks[c]!;
            const batch = collateExamples(
              data.examples,
              indices,
              { ...options, labels: trainLabels },
              data.frozen,
            );
            const result = await model.trainStep(batch, {
              lr,
              weightDecay: options.weightDecay,
              maxGradNorm: options.maxGradNorm ?? 0,
              accumulate: c < chunks.length - 1,
              ...(options.posWeight !== null ? { posWeight: options.posWeight } : {}),
            });
            // 1-based, as the step events and logged metrics count steps.
            if (!Number.isFinite(result.loss)) throw new NonFiniteLossError(fold, step + 1);
            lossSum += result.loss * indices.length;
            exampleSum += indices.length;
            tokens += batch.attentionMask.reduce((sum, value) => sum + value, 0);
            gradNorm = result.gradNorm;
            if (result.stepTotals) ({ lossSum, exampleSum, tokens } = result.stepTotals);
          }
          break;
        } catch (error) {
          const largest = Math.max(...chunks.map((chunk) => chunk.length));
          if (!options.outOfMemoryBackoff || !isOutOfMemory(error) || largest <= 1) throw error;
          await model.discardGradients();
          microSplit *= 2;
          lossSum = 0;
          exampleSum = 0;
          tokens = 0;
          const message =
            `fold ${fold} step ${step}: out of memory with micro-batches of ${largest}; ` +
            `retrying with ${Math.ceil(largest / 2)} and ${accumulation * microSplit} accumulation steps`;
          await onEvent?.({
            type: 'out-of-memory',
            fold,
            step,
            microBatchSize: Math.ceil(options.microBatchSize / microSplit),
            accumulationSteps: accumulation * microSplit,
            message,
          });
        }
      }
      const seconds = (performance.now() - started) / 1000;
      const loss = lossSum / exampleSum;
      const tokensPerSecond = tokens / Math.max(seconds, 1e-9);
      step += 1;
      lossSinceEvaluation.sum += loss;
      lossSinceEvaluation.count += 1;
      await onEvent?.({
        type: 'step',
        fold,
        step,
        totalSteps,
        epoch,
        loss,
        lr,
        gradNorm,
        tokensPerSecond,
      });
      if (step % evalEvery === 0 || step === totalSteps) {
        if (await evaluate()) {
          stoppedEarly = true;
          await onEvent?.({ type: 'early-stop', fold, step, best: stopping.snapshot().best });
          break training;
        }
      }
      if (hooks.shouldStop?.()) {
        const next = start + accumulation;
        // An epoch boundary: the resumed run starts the next epoch with a fresh plan.
        if (next >= plan.length) {
          epoch += 1;
          await saveCheckpoint(0, rng.draws());
        } else {
          await saveCheckpoint(next, rngDrawsAtEpochStart);
        }
        throw new TrainingInterruptedError(fold, step);
      }
    }
    epoch += 1;
  }
  if (history.length === 0 || history[history.length - 1]!.step !== step) await evaluate();
  await rm(checkpointDir, { recursive: true, force: true });
  return {
    bestAdapterDir,
    bestStep,
    bestValue: stopping.snapshot().best,
    steps: step,
    epochsRun: epoch,
    stoppedEarly,
    history,
  };
}
