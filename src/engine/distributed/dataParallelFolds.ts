/**
 * training.distributed.mode = ddp: every fold is trained by all ranks together, data-parallel
 * (dataParallelModel.ts: each rank takes its share of every global batch, gradients averaged with
 * bucketed all-reduce during backward, the same optimizer step everywhere). The result equals one
 * process training with the same global batch. Only rank 0 writes the run directory and logs;
 * the other ranks keep the fold trainer's adapters and checkpoints in ranks/rank_{r}/ (needed to
 * evaluate and to resume), dropped once a fold is done.
 */
import { rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';

import type { Fold } from '../../data/index.js';
import type { Logger } from '../../infra/index.js';
import type { Classifier, ProcessGroup } from '../../native/index.js';
import type { FoldStore, RunStore } from '../../run/index.js';
import type { FoldOutcome } from '../foldResults.js';
import type { FoldModel } from '../foldTrainer.js';
import type { ProgressMode } from '../progress.js';
import type { RunStateWrites } from '../runProgress.js';
import type { StopRequest } from '../stopRequest.js';
import { DataParallelModel } from './dataParallelModel.js';
import type { LaunchEnvironment } from './launchEnvironment.js';
import { RankedStrategy } from './rankedStrategy.js';
import type { TrackingRole } from './strategy.js';

export class DataParallelFolds extends RankedStrategy {
  readonly mode = 'ddp';
  private model: DataParallelModel | null = null;
  private meetings = 0;

  constructor(
    group: ProcessGroup,
    launch: LaunchEnvironment,
    logger: Logger,
    private readonly bucketBytes: number,
  ) {
    super(group, launch, logger);
  }

  get writesRun(): boolean {
    return this.rank === 0;
  }

  get writesFolds(): boolean {
    return this.rank === 0;
  }

  get tracking(): TrackingRole {
    return this.rank === 0 ? 'owner' : 'none';
  }

  override progress(configured: ProgressMode): ProgressMode {
    return this.rank === 0 ? configured : 'none';
  }

  async foldModel(classifier: Classifier, stop: StopRequest): Promise<FoldModel> {
    await classifier.setGradientSync(this.group, { bucketBytes: this.bucketBytes });
    this.model = new DataParallelModel(classifier, this.group, () => stop.requested);
    return this.model;
  }

  /** A rank that halved its micro-batches alone would train other examples than the others. */
  outOfMemoryBackoff(): boolean {
    return false;
  }

  runStateWrites(): RunStateWrites {
    return this.rank === 0 ? { kind: 'own' } : { kind: 'none' };
  }

  parentRunId(): Promise<string> {
    return Promise.reject(new Error('ddp: only rank 0 logs to tracking'));
  }

  async announceParentRun(): Promise<void> {}

  /** Every rank trains every unfinished fold; rank 0 also reads back the finished ones. */
  assignFolds(folds: readonly Fold[], finished: (index: number) => boolean): Fold[] {
    // Rank 0 opens (and ends) every fold's run; the others open none.
    if (this.rank === 0) for (const fold of folds) this.ownFolds.add(fold.index);
    return folds.filter((fold) => this.rank === 0 || !finished(fold.index));
  }

  /**
   * Also the fold's starting line: rank 0 opens the fold's tracking run and writes run-state.json
   * first, which may take long (an MLflow outage), so the ranks meet in the store, waiting as long
   * as everyone is alive, rather than in a collective bounded by timeout_s.
   */
  async prepareFold(store: RunStore, fold: number, resume: boolean): Promise<FoldStore> {
    const files = this.rank === 0 ? store.fold(fold) : store.rank(this.rank).fold(fold);
    // Every rank must continue from the same step, or their collectives would not match.
    const step = resume ? ((await files.checkpointState.readIfExists())?.step ?? null) : null;
    const steps = await this.group.exchange(
      this.nextKey(`fold-start/${fold}`),
      JSON.stringify(step),
    );
    const differing = steps.findIndex((value) => value !== steps[0]);
    if (differing >= 0) {
      const describe = (value: string) =>
        value === 'null' ? 'no checkpoint' : `a checkpoint at step ${value}`;
      throw new Error(
        `fold ${fold}: rank 0 has ${describe(steps[0]!)} but rank ${differing} has ` +
          `${describe(steps[differing]!)} (in its ranks/rank_${differing}/); resume a ddp run ` +
          'with the same number of ranks, on the same nodes',
      );
    }
    return files;
  }

  async finishFold(files: FoldStore): Promise<void> {
    if (this.rank === 0) return;
    await rm(files.dir, { recursive: true, force: true });
    // ranks/rank_{r}/ and ranks/ go when empty (the last fold), and stay when another rank's is there.
    for (const dir of [dirname(files.dir), dirname(dirname(files.dir))])
      await rmdir(dir).catch(() => undefined);
  }

  /**
   * At a fold's start; in the store, not a collective: rank 0 may still be writing the previous
   * fold's files and uploading them to MLflow.
   */
  async agreeToStop(requested: boolean): Promise<boolean> {
    const flags = await this.group.exchange(this.nextKey('stop'), requested ? '1' : '0');
    return flags.includes('1');
  }

  /** A store key unique to this meeting: every rank meets the same ones in the same order. */
  private nextKey(name: string): string {
    this.meetings += 1;
    return `${name}/${this.meetings}`;
  }

  shouldStop(): () => boolean {
    return () => this.model?.agreedStop ?? false;
  }

  async gatherOutcomes(outcomes: FoldOutcome[]): Promise<FoldOutcome[] | null> {
    return this.rank === 0 ? outcomes : null;
  }
}
