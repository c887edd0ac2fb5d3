/**
 * Trains and evaluates one outer fold: the inner train part trains the adapter, the inner
 * validation part drives early stopping and threshold tuning, and the held-out test fold is
 * scored once, at the end, with the best adapter and the tuned thresholds. The test fold is
 * never used for a decision.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { planEpochBatches } from './batching.js';
import { EarlyStopping, type EarlyStoppingState } from './earlyStopping.js';
import type { TrainEventHandler } from './events.js';
import {
  collateBatch,
  exampleLength,
  type ModelBatch,
  type TokenizedExamples,
} from './examples.js';
import { createRng, writeJsonAtomic } from '../infra/index.js';
import { learningRateAt, type LrScheduleName } from './schedule.js';

/** What the fold runner needs from a model; the native Classifier provides it. */
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
  ): Promise<{ loss: number; gradNorm: number }>;
  predictProba(batch: ModelBatch): Promise<Float32Array>;
  saveAdapter(dir: string): Promise<void>;
  loadAdapter(dir: string): Promise<void>;
  /** Drops gradients accumulated since the last optimizer step (before an out-of-memory retry). */
  discardGradients(): Promise<void>;
}

export interface FoldTrainingOptions {
  lr: number;
  weightDecay: number;
  maxEpochs: number;
  maxSteps: number | null;
  microBatchSize: number;
  effectiveBatchSize: number;
  warmupRatio: number;
  lrSchedule: LrScheduleName;
  maxGradNorm: number;
  evalEverySteps: number;
  earlyStopping: { mode: 'max' | 'min'; patience: number; minDelta: number };
  posWeight: number | null;
  bucketWindow: number;
  inferenceBatchSize: number;
  padTokenId: number;
  paddingSide: 'right' | 'left';
  /** On CUDA: halve the micro-batch and double accumulation when a step runs out of memory. */
  outOfMemoryBackoff: boolean;
}

export interface FoldData {
  examples: TokenizedExamples;
  labels: Uint8Array;
  trainIndices: number[];
  validationIndices: number[];
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
  history: { step: number; value: number; trainLoss?: number; metrics: Record<string, number> }[];
}

export interface FoldRunnerHooks {
  fold: number;
  onEvent?: TrainEventHandler;
  /** Called with step metrics (loss, lr, grad_norm, tokens_per_second) after each optimizer step. */
  logStepMetrics?: (step: number, metrics: Record<string, number>) => Promise<void> | void;
  /** Called with validation metrics after each evaluation. */
  logValidationMetrics?: (step: number, metrics: Record<string, number>) => Promise<void> | void;
  /** Returns true when an interrupt asked the run to stop after the current step. */
  shouldStop?: () => boolean;
  /** Seed for the batch order; the fold runner counts draws so a resume can replay them. */
  seed: number;
  /**
   * Called before each optimizer step: the engine reseeds libtorch from (fold, step) so dropout
   * masks do not depend on how many steps ran in this process (exact resume).
   */
  beforeStep?: (step: number) => void;
  /** Called after an out-of-memory back-off with the new micro-batch size and accumulation. */
  onOutOfMemoryBackoff?: (step: number, metrics: Record<string, number>) => Promise<void> | void;
  /** Continue from the checkpoint an interrupted run saved in <foldDir>/checkpoint. */
  resume?: boolean;
}

/** What an interrupted fold saves beside its adapter + optimizer state, to continue exactly. */
export interface FoldCheckpointState {
  step: number;
  epoch: number;
  /** Index into the epoch's batch plan of the next micro-batch group. */
  nextBatch: number;
  /** RNG draws made before this epoch's plan (the plan is rebuilt from them). */
  rngDrawsAtEpochStart: number;
  earlyStopping: EarlyStoppingState;
  bestStep: number;
  history: FoldTrainingResult['history'];
  lossSinceEvaluation: { sum: number; count: number };
}

export const checkpointDirName = 'checkpoint';
const trainerStateFile = 'trainer_state.json';

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

export async function readFoldCheckpoint(foldDir: string): Promise<FoldCheckpointState | null> {
  const path = join(foldDir, checkpointDirName, trainerStateFile);
  if (!existsSync(path)) return null;
  return JSON.parse(await readFile(path, 'utf8')) as FoldCheckpointState;
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

export function optimizerStepsPerEpoch(trainCount: number, options: FoldTrainingOptions): number {
  const microBatches = Math.ceil(trainCount / options.microBatchSize);
  return Math.ceil(microBatches / accumulationSteps(options));
}

/** Optimizer steps a fold runs unless it stops early: epochs x steps per epoch, capped by maxSteps. */
export function plannedSteps(trainCount: number, options: FoldTrainingOptions): number {
  const perEpoch = optimizerStepsPerEpoch(trainCount, options);
  const steps = perEpoch * options.maxEpochs;
  return Math.max(1, options.maxSteps === null ? steps : Math.min(options.maxSteps, steps));
}

/** libtorch's CUDA allocator error ("CUDA out of memory. Tried to allocate ..."). */
export function isOutOfMemory(error: unknown): boolean {
  return error instanceof Error && /out of memory/i.test(error.message);
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

/** Predicts P(label = 1) for the given examples in length-sorted batches (less padding). */
export async function predictIndices(
  model: FoldModel,
  examples: TokenizedExamples,
  indices: readonly number[],
  options: Pick<FoldTrainingOptions, 'inferenceBatchSize' | 'padTokenId' | 'paddingSide'>,
): Promise<Float32Array> {
  const order = indices
    .map((exampleIndex, position) => ({ exampleIndex, position }))
    .sort(
      (a, b) => exampleLength(examples, a.exampleIndex) - exampleLength(examples, b.exampleIndex),
    );
  const scores = new Float32Array(indices.length);
  for (let start = 0; start < order.length; start += options.inferenceBatchSize) {
    const chunk = order.slice(start, start + options.inferenceBatchSize);
    const batch = collateBatch(
      examples,
      chunk.map((entry) => entry.exampleIndex),
      options,
    );
    const probabilities = await model.predictProba(batch);
    chunk.forEach((entry, row) => {
      scores[entry.position] = probabilities[row]!;
    });
  }
  return scores;
}

export async function trainFold(
  model: FoldModel,
  data: FoldData,
  options: FoldTrainingOptions,
  foldDir: string,
  scoreValidation: ValidationScorer,
  hooks: FoldRunnerHooks,
): Promise<FoldTrainingResult> {
  const { fold, onEvent } = hooks;
  const accumulation = accumulationSteps(options);
  const stepsPerEpoch = optimizerStepsPerEpoch(data.trainIndices.length, options);
  const totalSteps = plannedSteps(data.trainIndices.length, options);
  const warmupSteps = Math.round(options.warmupRatio * totalSteps);
  const evalEvery = options.evalEverySteps > 0 ? options.evalEverySteps : stepsPerEpoch;
  const stopping = new EarlyStopping(options.earlyStopping);
  const bestAdapterDir = join(foldDir, 'best_adapter');
  await mkdir(foldDir, { recursive: true });
  const trainLabels = data.labels;
  const history: FoldTrainingResult['history'] = [];
  const trainLengths = data.trainIndices.map((i) => exampleLength(data.examples, i));

  let step = 0;
  let epoch = 0;
  let stoppedEarly = false;
  let bestStep = 0;
  let lossSinceEvaluation = { sum: 0, count: 0 };
  let firstBatch = 0;
  let microSplit = 1;
  const rng = countingRng(hooks.seed);
  const checkpointDir = join(foldDir, checkpointDirName);
  const saved = hooks.resume ? await readFoldCheckpoint(foldDir) : null;
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
    const scores = await predictIndices(model, data.examples, data.validationIndices, options);
    const { value, metrics } = scoreValidation(data.validationIndices, scores);
    const decision = stopping.update(value, step);
    const state: EarlyStoppingState = stopping.snapshot();
    const trainLoss =
      lossSinceEvaluation.count > 0
        ? lossSinceEvaluation.sum / lossSinceEvaluation.count
        : undefined;
    lossSinceEvaluation.sum = 0;
    lossSinceEvaluation.count = 0;
    history.push({ step, value, ...(trainLoss !== undefined ? { trainLoss } : {}), metrics });
    await hooks.logValidationMetrics?.(step, metrics);
    if (decision.improved) {
      bestStep = step;
      await rm(bestAdapterDir, { recursive: true, force: true });
      await model.saveAdapter(bestAdapterDir);
    }
    onEvent?.({
      type: 'evaluation',
      fold,
      step,
      metric: 'validation',
      value,
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
    await writeJsonAtomic(join(checkpointDir, trainerStateFile), state);
  };

  training: while (step < totalSteps && epoch < options.maxEpochs) {
    const rngDrawsAtEpochStart = rng.draws();
    const plan = planEpochBatches(trainLengths, {
      microBatchSize: options.microBatchSize,
      bucketWindow: options.bucketWindow,
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
        const chunks = group.flatMap((micro) => splitEvenly(micro, microSplit));
        try {
          for (let c = 0; c < chunks.length; c++) {
            const indices = chunks[c]!.map((position) => data.trainIndices[position]!);
            const batch = collateBatch(data.examples, indices, { ...options, labels: trainLabels });
            const result = await model.trainStep(batch, {
              lr,
              weightDecay: options.weightDecay,
              maxGradNorm: options.maxGradNorm,
              accumulate: c < chunks.length - 1,
              ...(options.posWeight !== null ? { posWeight: options.posWeight } : {}),
            });
            // 1-based, as the step events and logged metrics count steps.
            if (!Number.isFinite(result.loss)) throw new NonFiniteLossError(fold, step + 1);
            lossSum += result.loss * indices.length;
            exampleSum += indices.length;
            tokens += batch.attentionMask.reduce((sum, value) => sum + value, 0);
            gradNorm = result.gradNorm;
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
          onEvent?.({ type: 'warning', message });
          await hooks.onOutOfMemoryBackoff?.(step, {
            micro_batch_size: Math.ceil(options.microBatchSize / microSplit),
            accumulation_steps: accumulation * microSplit,
          });
        }
      }
      const seconds = (performance.now() - started) / 1000;
      const loss = lossSum / exampleSum;
      const tokensPerSecond = tokens / Math.max(seconds, 1e-9);
      step += 1;
      lossSinceEvaluation.sum += loss;
      lossSinceEvaluation.count += 1;
      await hooks.logStepMetrics?.(step, {
        loss,
        lr,
        grad_norm: gradNorm,
        tokens_per_second: tokensPerSecond,
      });
      onEvent?.({
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
          onEvent?.({ type: 'early-stop', fold, step, best: stopping.snapshot().best });
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
