// Shared set-up for the engine suites: a small, quick run and small fold-runner settings.
import { join, resolve } from 'node:path';

import type { FoldTrainingOptions } from '../../../src/engine/foldTrainer.js';
import { RunStore, type FoldStore } from '../../../src/run/index.js';

const criteriaPath = resolve('data/dsm5/criteria.json');

/**
 * Overrides for a small run under `dir`: the tiny model (and its quick training group, not the
 * default SmolLM2 recipe) and synthetic data (60 posts) created there on first use, 2 splits, 112-token prompts, MLflow and progress off. `extra` comes last
 * and wins over any of these.
 */
export function smallRunOverrides(dir: string, runName: string, extra: string[] = []): string[] {
  return [
    'model=tiny',
    'training=default',
    `run_dir=${join(dir, runName)}`,
    `model.path=${join(dir, 'model')}`,
    `data.dir=${join(dir, 'data')}`,
    `data.criteria_path=${criteriaPath}`,
    'data.synthetic.n_posts=60',
    'data.splits.n_splits=2',
    'data.splits.inner_validation_fraction=0.25',
    'data.prompt.max_length=112',
    'logging.mlflow.enabled=false',
    'logging.progress.mode=none',
    'logging.level=error',
    ...extra,
  ];
}

/** DoRA r=4 on all seven Llama projections, no dropout. */
export const smallDora = {
  r: 4,
  alpha: 8,
  dropout: 0,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  useRslora: false,
};

/** One epoch of micro-batches of 8 accumulated to 16, constant lr 1e-2, no early stop. */
export const smallFoldOptions: FoldTrainingOptions = {
  lr: 1e-2,
  weightDecay: 0,
  maxEpochs: 1,
  maxSteps: null,
  microBatchSize: 8,
  effectiveBatchSize: 16,
  warmupRatio: 0,
  lrSchedule: 'constant',
  maxGradNorm: 1,
  evalEverySteps: 0,
  earlyStopping: { metric: 'f1', mode: 'max', patience: 5, minDelta: 0 },
  posWeight: null,
  lengthBucketing: false,
  inferenceBatchSize: 16,
  padTokenId: 0,
  paddingSide: 'right',
  outOfMemoryBackoff: true,
};

/** The files of a fold trained outside a run (the fold trainer writes its adapters there). */
export function foldFilesIn(dir: string, fold = 0): FoldStore {
  return new RunStore(dir).fold(fold);
}
