/**
 * How a training run is spread over processes: the one component of the recipe that knows about
 * ranks. The recipe asks it the questions whose answers differ per rank (which folds to train,
 * which model drives the fold trainer, where a fold's files go, who writes and logs what) and
 * calls it at the points where ranks meet (set-up order, the parent run's id, the end). One
 * process is the trivial strategy below; several are FoldsAcrossRanks and DataParallelFolds.
 */
import type { Fold } from '../../data/index.js';
import type { Classifier } from '../../native/index.js';
import type { FoldStore, RunState, RunStore } from '../../run/index.js';
import type { FoldOutcome } from '../foldResults.js';
import type { FoldModel } from '../foldTrainer.js';
import type { ProgressMode } from '../progress.js';
import type { RunStateWrites } from '../runProgress.js';
import type { StopRequest } from '../stopRequest.js';

/** Which tracking runs a rank logs: all of them, only its folds' (under another's parent), none. */
export type TrackingRole = 'owner' | 'children' | 'none';

export interface DistributedStrategy {
  readonly mode: 'single' | 'folds' | 'ddp';
  readonly rank: number;
  readonly worldSize: number;
  /** This rank writes the run directory's own files: config, splits, manifest, summary. */
  readonly writesRun: boolean;
  /** This rank writes and reports the folds it trains (not so for ddp ranks other than 0). */
  readonly writesFolds: boolean;
  readonly tracking: TrackingRole;
  /** The device this rank trains on: `cuda` becomes its own GPU, cuda:LOCAL_RANK. */
  device(configured: string): string;
  /** How this rank shows progress, given the configured mode. */
  progress(configured: ProgressMode): ProgressMode;
  /** Rank 0's result of `compute` on every rank (rank 0 computes it; JSON-able). */
  fromRankZero<T>(name: string, compute: () => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on rank 0 first, then on the others: for what the ranks share on disk and create
   * on first use (the tiny model, the synthetic data, the token cache, the local MLflow server).
   */
  rankZeroFirst<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** The model the fold trainer and the evaluation drive. */
  foldModel(classifier: Classifier, stop: StopRequest): Promise<FoldModel>;
  /** Whether the fold trainer may halve micro-batches after running out of memory. */
  outOfMemoryBackoff(onCuda: boolean): boolean;
  runStateWrites(): RunStateWrites;
  /** The parent tracking run's id, from the rank that owns it (tracking role `children`). */
  parentRunId(): Promise<string>;
  /** The owner tells the other ranks the parent run's id (once run-state.json holds it). */
  announceParentRun(runId: string | null): Promise<void>;
  /** The folds this rank trains (or, finished ones, reads back), in order. */
  assignFolds(folds: readonly Fold[], finished: (index: number) => boolean): Fold[];
  /**
   * Where a fold's files go on this rank (ddp ranks other than 0: their own copy); with `resume`,
   * ddp ranks check that they all continue from the same checkpoint.
   */
  prepareFold(store: RunStore, fold: number, resume: boolean): Promise<FoldStore>;
  /** After a fold's evaluation: drops what this rank kept only for itself. */
  finishFold(files: FoldStore): Promise<void>;
  /** Whether to stop at a fold's start (an interrupt); every ddp rank agrees. */
  agreeToStop(requested: boolean): Promise<boolean>;
  /** The fold trainer's question after each step: stop now? */
  shouldStop(stop: StopRequest): () => boolean;
  /** Throws when another rank has failed; called before each step. */
  checkPeers(): void;
  /** Every rank's fold outcomes, on the rank that writes the summary (null on the others). */
  gatherOutcomes(outcomes: FoldOutcome[], folds: readonly Fold[]): Promise<FoldOutcome[] | null>;
  /** Rank 0 runs `finish` and shares its result; the others receive it (`finish` is null there). */
  shareResult<T>(finish: (() => Promise<T>) | null): Promise<T>;
  /**
   * After another rank failed: the tracking runs in `state` (run-state.json) that a failed rank
   * may have left open and this rank did not open itself.
   */
  runsLeftOpen(state: RunState): string[];
  /** Leaves the process group; `error` (what ended this rank) is passed on to the others. */
  leave(error?: unknown): Promise<void>;
}

/** One process: every answer is the plain one. */
export const singleProcess: DistributedStrategy = {
  mode: 'single',
  rank: 0,
  worldSize: 1,
  writesRun: true,
  writesFolds: true,
  tracking: 'owner',
  device: (configured) => configured,
  progress: (configured) => configured,
  fromRankZero: (_name, compute) => compute(),
  rankZeroFirst: (_name, fn) => fn(),
  foldModel: async (classifier) => classifier,
  outOfMemoryBackoff: (onCuda) => onCuda,
  runStateWrites: () => ({ kind: 'own' }),
  parentRunId: () => Promise.reject(new Error('a single process owns its parent run')),
  announceParentRun: async () => undefined,
  assignFolds: (folds) => [...folds],
  prepareFold: async (store, fold) => store.fold(fold),
  finishFold: async () => undefined,
  agreeToStop: async (requested) => requested,
  shouldStop: (stop) => () => stop.requested,
  checkPeers: () => undefined,
  gatherOutcomes: async (outcomes) => outcomes,
  shareResult: (finish) => finish!(),
  runsLeftOpen: () => [],
  leave: async () => undefined,
};
