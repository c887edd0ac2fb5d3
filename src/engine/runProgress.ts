/**
 * run-state.json as the run goes: the tracking run ids and which folds finished, so a resumed
 * run skips finished folds, continues an interrupted one and keeps logging into the same runs.
 */
import type { RunState, RunStore } from '../run/index.js';

export type FoldState = RunState['folds'][string];

/**
 * Who writes run-state.json. `own`: this process alone. `shared`: several ranks training
 * different folds take turns (`exclusive`), each merging its folds' entries into the file; the
 * one with `creates` writes it first. `none`: another rank owns the file (data-parallel ranks
 * other than 0).
 */
export type RunStateWrites =
  | { kind: 'own' }
  | { kind: 'shared'; creates: boolean; exclusive: <T>(fn: () => Promise<T>) => Promise<T> }
  | { kind: 'none' };

export class RunProgress {
  private constructor(
    private readonly store: RunStore,
    private readonly state: RunState,
    private readonly writes: RunStateWrites,
  ) {}

  /** Starts from the interrupted run's state when resuming, else from nothing. */
  static async start(
    store: RunStore,
    previous: RunState | null,
    parentRunId: string | null,
    writes: RunStateWrites = { kind: 'own' },
  ): Promise<RunProgress> {
    const state: RunState = previous ?? { parentRunId, folds: {} };
    state.parentRunId = parentRunId ?? state.parentRunId;
    if (writes.kind === 'own') await store.runState.write(state);
    if (writes.kind === 'shared' && writes.creates)
      await writes.exclusive(() => store.runState.write(state));
    return new RunProgress(store, state, writes);
  }

  fold(index: number): FoldState | undefined {
    return this.state.folds[String(index)];
  }

  async set(index: number, entry: FoldState): Promise<void> {
    this.state.folds[String(index)] = entry;
    const { writes, store } = this;
    if (writes.kind === 'own') await store.runState.write(this.state);
    if (writes.kind === 'shared') {
      await writes.exclusive(async () => {
        const current = (await store.runState.readIfExists()) ?? this.state;
        current.folds[String(index)] = entry;
        await store.runState.write(current);
      });
    }
  }
}
