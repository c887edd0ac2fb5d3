/** Events a training run emits: the CLI's progress display and API users see the same ones. */
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
      value: number;
      best: number | null;
      improved: boolean;
      evaluationsWithoutImprovement: number;
    }
  | { type: 'early-stop'; fold: number; step: number; best: number | null }
  | { type: 'fold-end'; fold: number; testMetrics: Record<string, number>; seconds: number }
  /** The fold stopped with an error (a NaN/Inf loss); the run goes on with the next fold. */
  | { type: 'fold-failed'; fold: number; step: number; message: string }
  | { type: 'warning'; message: string }
  | { type: 'run-end'; runDir: string; summaryPath: string; seconds: number };

export type TrainEventHandler = (event: TrainEvent) => void;
