/**
 * Events a training run emits. The CLI's progress display, API users (`onEvent`) and the tracking
 * sink all see the same ones, in the same order.
 */
export type TrainEvent =
  | { type: 'run-start'; runDir: string; parentRunId: string | null; folds: number[] }
  | {
      type: 'fold-start';
      fold: number;
      totalSteps: number;
      trainPairs: number;
      validationPairs: number;
      testPairs: number;
    }
  | {
      type: 'step';
      fold: number;
      step: number;
      totalSteps: number;
      epoch: number;
      loss: number;
      lr: number;
      gradNorm: number;
      tokensPerSecond: number;
    }
  | {
      type: 'evaluation';
      fold: number;
      step: number;
      metric: string;
      /** The early-stopping value. */
      value: number;
      /** Every validation metric (snake_case keys), at the validation set's F1-optimal threshold. */
      metrics: Record<string, number>;
      best: number | null;
      improved: boolean;
      evaluationsWithoutImprovement: number;
    }
  | { type: 'early-stop'; fold: number; step: number; best: number | null }
  /** A step ran out of memory and is retried with half the micro-batch, twice the accumulation. */
  | {
      type: 'out-of-memory';
      fold: number;
      step: number;
      microBatchSize: number;
      accumulationSteps: number;
      message: string;
    }
  /**
   * A resumed run trains a fold again from step 0 (its last process saved no checkpoint, or its
   * loss diverged); `previousRunId` is the tracking run it had, `runId` the new one.
   */
  | {
      type: 'fold-restart';
      fold: number;
      reason: string;
      previousRunId: string | null;
      runId: string | null;
    }
  /** The fold's files are written (fold_{i}/ in the run directory). */
  | { type: 'fold-end'; fold: number; testMetrics: Record<string, number>; seconds: number }
  /** The fold stopped with an error (a NaN/Inf loss); the run goes on with the next fold. */
  | { type: 'fold-failed'; fold: number; step: number; message: string }
  /** summary.json is written. */
  | { type: 'run-end'; runDir: string; summaryPath: string; seconds: number };

/** What `onEvent` users give: called with each event, its result ignored. */
export type TrainEventHandler = (event: TrainEvent) => void;

/** A listener the run waits for (the tracking sink logs before the run goes on). */
export type TrainEventListener = (event: TrainEvent) => unknown;

/** One function that hands each event to every listener in order, awaiting each. */
export function eventStream(
  listeners: readonly (TrainEventListener | null | undefined)[],
): (event: TrainEvent) => Promise<void> {
  const active = listeners.filter((listener): listener is TrainEventListener => Boolean(listener));
  return async (event) => {
    for (const listener of active) await listener(event);
  };
}
