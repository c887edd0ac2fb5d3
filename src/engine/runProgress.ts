/**
 * run-state.json as the run goes: the tracking run ids and which folds finished, so a resumed
 * run skips finished folds, continues an interrupted one and keeps logging into the same runs.
 */
import type { RunState, RunStore } from '../run/index.js';

export type FoldState = RunState['folds'][string];

export class RunProgress {
  private constructor(
    private readonly store: RunStore,
    private readonly state: RunState,
  ) {}

  /** Starts from the interrupted run's state when resuming, else from nothing. */
  static async start(
    store: RunStore,
    previous: RunState | null,
    parentRunId: string | null,
  ): Promise<RunProgress> {
    const state: RunState = previous ?? { parentRunId, folds: {} };
    state.parentRunId = parentRunId ?? state.parentRunId;
    await store.runState.write(state);
    return new RunProgress(store, state);
  }

  fold(index: number): FoldState | undefined {
    return this.state.folds[String(index)];
  }

  async set(index: number, entry: FoldState): Promise<void> {
    this.state.folds[String(index)] = entry;
    await this.store.runState.write(this.state);
  }
}
