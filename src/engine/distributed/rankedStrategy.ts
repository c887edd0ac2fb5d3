/**
 * What both multi-process strategies share: the process group, the meeting points (rank 0 first,
 * rank 0's values, the final result) and the watch for a failed peer.
 */
import type { Fold } from '../../data/index.js';
import type { Logger } from '../../infra/index.js';
import { nativeInfo, type Classifier, type ProcessGroup } from '../../native/index.js';
import type { FoldStore, RunState, RunStore } from '../../run/index.js';
import type { FoldOutcome } from '../foldResults.js';
import { TrainingInterruptedError, type FoldModel } from '../foldTrainer.js';
import type { ProgressMode } from '../progress.js';
import type { RunStateWrites } from '../runProgress.js';
import type { StopRequest } from '../stopRequest.js';
import type { LaunchEnvironment } from './launchEnvironment.js';
import type { DistributedStrategy, TrackingRole } from './strategy.js';

/** Another rank died, hung or stopped with an error; the message names it. */
export class PeerFailureError extends Error {
  override name = 'PeerFailureError';
}

/**
 * A rank's GPU: cuda:LOCAL_RANK, as torchrun's ranks on one node share its GPUs; cuda:0 when the
 * rank sees one GPU only (Slurm's --gpus-per-task gives each task its own CUDA_VISIBLE_DEVICES).
 */
export function rankDevice(localRank: number): string {
  return nativeInfo().cudaDeviceCount === 1 ? 'cuda:0' : `cuda:${localRank}`;
}

/** What a rank publishes for the others: its value, or why it has none. */
type Envelope<T> = { ok: T } | { error: string };

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export abstract class RankedStrategy implements DistributedStrategy {
  abstract readonly mode: 'folds' | 'ddp';
  abstract readonly writesRun: boolean;
  abstract readonly writesFolds: boolean;
  abstract readonly tracking: TrackingRole;
  readonly rank: number;
  readonly worldSize: number;
  private failure: string | null = null;
  private readonly watch: NodeJS.Timeout;
  /** The unfinished folds assignFolds gave this rank. */
  protected readonly ownFolds = new Set<number>();

  constructor(
    readonly group: ProcessGroup,
    readonly launch: LaunchEnvironment,
    protected readonly logger: Logger,
  ) {
    this.rank = group.rank;
    this.worldSize = group.worldSize;
    // The native watchdog notices a failed peer; this makes the next step see it.
    this.watch = setInterval(() => {
      this.failure ??= group.failure();
    }, 250);
    this.watch.unref();
  }

  abstract foldModel(classifier: Classifier, stop: StopRequest): Promise<FoldModel>;
  abstract outOfMemoryBackoff(onCuda: boolean): boolean;
  abstract runStateWrites(): RunStateWrites;
  abstract parentRunId(): Promise<string>;
  abstract announceParentRun(runId: string | null): Promise<void>;
  abstract assignFolds(folds: readonly Fold[], finished: (index: number) => boolean): Fold[];
  abstract prepareFold(store: RunStore, fold: number, resume: boolean): Promise<FoldStore>;
  abstract finishFold(files: FoldStore): Promise<void>;
  abstract agreeToStop(requested: boolean): Promise<boolean>;
  abstract shouldStop(stop: StopRequest): () => boolean;
  abstract gatherOutcomes(
    outcomes: FoldOutcome[],
    folds: readonly Fold[],
  ): Promise<FoldOutcome[] | null>;

  device(configured: string): string {
    return configured === 'cuda' ? rankDevice(this.launch.localRank) : configured;
  }

  progress(configured: ProgressMode): ProgressMode {
    // Several processes drawing bars on one terminal garble each other.
    return configured === 'auto' || configured === 'bar' ? 'lines' : configured;
  }

  async fromRankZero<T>(name: string, compute: () => Promise<T>): Promise<T> {
    const key = `rank-0/${name}`;
    if (this.rank === 0) return this.publishOutcome(key, compute);
    return this.receive<T>(key, `rank 0 failed while computing ${name}`);
  }

  async rankZeroFirst<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const key = `first/${name}`;
    if (this.rank === 0) {
      const result = await this.publishOutcome(key, fn);
      return result;
    }
    await this.receive<unknown>(key, `rank 0 failed in ${name}`);
    return fn();
  }

  async shareResult<T>(finish: (() => Promise<T>) | null): Promise<T> {
    if (finish) return this.publishOutcome('result', finish);
    return this.receive<T>('result', 'rank 0 could not finish the run');
  }

  runsLeftOpen(state: RunState): string[] {
    const open = Object.entries(state.folds)
      .filter(([fold, entry]) => entry.status === 'running' && !this.ownFolds.has(Number(fold)))
      .flatMap(([, entry]) => (entry.runId ? [entry.runId] : []));
    const parentOwner = this.tracking === 'owner';
    return [...(!parentOwner && state.parentRunId ? [state.parentRunId] : []), ...open];
  }

  checkPeers(): void {
    this.failure ??= this.group.failure();
    if (this.failure !== null) throw new PeerFailureError(`rank ${this.rank}: ${this.failure}`);
  }

  async leave(error?: unknown): Promise<void> {
    clearInterval(this.watch);
    // A rank that stops because a peer failed, or because it was asked to (Ctrl-C, which ddp
    // ranks agree on), has nothing new to tell the others.
    const reason =
      error === undefined ||
      error instanceof PeerFailureError ||
      error instanceof TrainingInterruptedError
        ? undefined
        : messageOf(error);
    try {
      await this.group.leave(reason);
    } catch (leaveError) {
      this.logger.warn('leaving the process group failed', { error: messageOf(leaveError) });
    }
  }

  /** A lock over all ranks (a ticket lock on store counters): one holder at a time. */
  protected async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const ticket = (await this.group.add(`lock/${name}/ticket`, 1)) - 1;
    for (let pause = 5; (await this.group.add(`lock/${name}/serving`, 0)) !== ticket;) {
      this.checkPeers();
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 200);
    }
    try {
      return await fn();
    } finally {
      await this.group.add(`lock/${name}/serving`, 1);
    }
  }

  private async publishOutcome<T>(key: string, compute: () => Promise<T>): Promise<T> {
    let value: T;
    try {
      value = await compute();
    } catch (error) {
      await this.group.publish(key, JSON.stringify({ error: messageOf(error) })).catch(() => {});
      throw error;
    }
    await this.group.publish(key, JSON.stringify({ ok: value ?? null }));
    return value;
  }

  private async receive<T>(key: string, failed: string): Promise<T> {
    const envelope = JSON.parse(await this.group.await(key)) as Envelope<T>;
    if ('error' in envelope) throw new PeerFailureError(`${failed}: ${envelope.error}`);
    return envelope.ok;
  }
}
