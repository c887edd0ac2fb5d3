/**
 * training.distributed.mode = folds: the ranks take the folds round-robin, each training its own
 * folds start to end on its own model, as a single process would. Rank 0 owns the run: the
 * run-level files, the parent tracking run and the summary; the other ranks write their folds'
 * files (the run directory is shared) and log their folds' runs under rank 0's parent. At the end
 * rank 0 gathers every rank's fold results and pools them. run-state.json is written by every
 * rank in turn (a lock in the rendezvous store), so a resume knows every fold's state.
 */
import type { Fold } from '../../data/index.js';
import type { Classifier } from '../../native/index.js';
import type { FailedFold, FoldResult, FoldStore, RunStore } from '../../run/index.js';
import type { FoldOutcome } from '../foldResults.js';
import type { FoldModel } from '../foldTrainer.js';
import type { RunStateWrites } from '../runProgress.js';
import type { StopRequest } from '../stopRequest.js';
import { RankedStrategy } from './rankedStrategy.js';
import type { TrackingRole } from './strategy.js';

/** A fold outcome as JSON (the Fold itself is known to every rank by its index). */
type WireOutcome =
  | { fold: number; result: FoldResult; thresholds: Record<string, number>; scores: number[] }
  | { failed: FailedFold };

export class FoldsAcrossRanks extends RankedStrategy {
  readonly mode = 'folds';
  readonly writesFolds = true;

  get writesRun(): boolean {
    return this.rank === 0;
  }

  get tracking(): TrackingRole {
    return this.rank === 0 ? 'owner' : 'children';
  }

  async foldModel(classifier: Classifier): Promise<FoldModel> {
    return classifier;
  }

  outOfMemoryBackoff(onCuda: boolean): boolean {
    return onCuda;
  }

  runStateWrites(): RunStateWrites {
    return {
      kind: 'shared',
      creates: this.rank === 0,
      exclusive: (fn) => this.exclusive('run-state', fn),
    };
  }

  async parentRunId(): Promise<string> {
    return this.group.await('parent-run');
  }

  async announceParentRun(runId: string | null): Promise<void> {
    if (this.rank === 0 && runId !== null) await this.group.publish('parent-run', runId);
  }

  /** Unfinished folds round-robin; rank 0 also reads back the finished ones for the summary. */
  assignFolds(folds: readonly Fold[], finished: (index: number) => boolean): Fold[] {
    const pending = folds.filter((fold) => !finished(fold.index));
    const mine = new Set(pending.filter((_, i) => i % this.worldSize === this.rank));
    for (const fold of mine) this.ownFolds.add(fold.index);
    return folds.filter((fold) => (finished(fold.index) ? this.rank === 0 : mine.has(fold)));
  }

  async prepareFold(store: RunStore, fold: number): Promise<FoldStore> {
    return store.fold(fold);
  }

  async finishFold(): Promise<void> {}

  async agreeToStop(requested: boolean): Promise<boolean> {
    return requested;
  }

  shouldStop(stop: StopRequest): () => boolean {
    return () => stop.requested;
  }

  async gatherOutcomes(
    outcomes: FoldOutcome[],
    folds: readonly Fold[],
  ): Promise<FoldOutcome[] | null> {
    const wire: WireOutcome[] = outcomes.map((outcome) =>
      'failed' in outcome
        ? { failed: outcome.failed }
        : {
            fold: outcome.fold.index,
            result: outcome.result,
            thresholds: outcome.thresholds,
            scores: Array.from(outcome.scores),
          },
    );
    const all = await this.group.exchange('fold-outcomes', JSON.stringify(wire));
    if (this.rank !== 0) return null;
    const byIndex = new Map(folds.map((fold) => [fold.index, fold]));
    // The run's fold order, as one process would have them.
    const position = new Map(folds.map((fold, i) => [fold.index, i]));
    return all
      .flatMap((text) => JSON.parse(text) as WireOutcome[])
      .map((outcome): FoldOutcome => {
        if ('failed' in outcome) return outcome;
        return {
          fold: byIndex.get(outcome.fold)!,
          result: outcome.result,
          thresholds: outcome.thresholds,
          scores: Float32Array.from(outcome.scores),
        };
      })
      .sort((a, b) => position.get(foldIndexOf(a))! - position.get(foldIndexOf(b))!);
  }
}

function foldIndexOf(outcome: FoldOutcome): number {
  return 'failed' in outcome ? outcome.failed.fold : outcome.fold.index;
}
