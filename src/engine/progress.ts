/**
 * Live progress for a training run, fed by the run's events: one bar per fold on a TTY
 * (step/total, loss, lr, tokens/s, ETA, best validation score); otherwise (a log file, CI, nohup)
 * one line per evaluation and fold, plus a progress line every `every_seconds` and every
 * `every_steps` optimizer steps with the fold, step/total, loss, tokens/s and the ETA of the fold
 * and of the run, so a long epoch is never silent.
 */
import { SingleBar, Presets } from 'cli-progress';

import type { Config } from '../config/index.js';
import type { TrainEvent, TrainEventHandler } from './events.js';

export type ProgressSettings = Config['logging']['progress'];
export type ProgressMode = ProgressSettings['mode'];

export function createProgressReporter(
  settings: ProgressSettings,
  stream: NodeJS.WriteStream = process.stderr,
  now: () => number = Date.now,
): TrainEventHandler {
  const mode = settings.mode;
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'none') return () => {};
  if (resolved === 'lines') {
    const lines = new ProgressLines(settings, now);
    return (event) => {
      const line = event.type === 'step' ? lines.step(event) : lines.other(event);
      if (line) stream.write(`${line}\n`);
    };
  }
  let bar: SingleBar | null = null;
  let best = '-';
  return (event) => {
    switch (event.type) {
      case 'fold-start':
        best = '-';
        bar = new SingleBar(
          {
            stream,
            format: `fold ${event.fold} [{bar}] {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | best {best} | ETA {eta_formatted}`,
            hideCursor: true,
          },
          Presets.shades_classic,
        );
        bar.start(event.totalSteps, 0, { loss: '-', lr: '-', tps: '-', best });
        break;
      case 'step':
        bar?.update(event.step, {
          loss: event.loss.toFixed(4),
          lr: event.lr.toExponential(2),
          tps: Math.round(event.tokensPerSecond),
          best,
        });
        break;
      case 'evaluation':
        best = event.best === null ? '-' : event.best.toFixed(4);
        bar?.update({ best });
        break;
      case 'early-stop':
      case 'fold-end':
      case 'fold-failed':
        bar?.stop();
        bar = null;
        writeLine(stream, event);
        break;
      default:
        writeLine(stream, event);
    }
  };
}

type StepEvent = Extract<TrainEvent, { type: 'step' }>;

/**
 * The lines mode's state: which folds are still to come, when the fold started, and the steps and
 * losses since the last progress line. The clock is injected (milliseconds) so tests are exact.
 */
export class ProgressLines {
  private folds: number[] = [];
  private foldStarted = 0;
  /** The step count when this process started on the fold (a resumed fold starts past 0). */
  private firstStep: number | null = null;
  private lastLineAt = 0;
  private losses: number[] = [];
  private tokensPerSecond: number[] = [];

  constructor(
    private readonly settings: Pick<ProgressSettings, 'every_seconds' | 'every_steps'>,
    private readonly now: () => number,
  ) {}

  /** The line for a non-step event (describeEvent), keeping the run's shape up to date. */
  other(event: TrainEvent): string | null {
    if (event.type === 'run-start') this.folds = [...event.folds];
    if (event.type === 'fold-start') {
      this.foldStarted = this.now();
      this.lastLineAt = this.foldStarted;
      this.firstStep = null;
      this.losses = [];
      this.tokensPerSecond = [];
    }
    return describeEvent(event);
  }

  /** A progress line when one is due after this step, else null. */
  step(event: StepEvent): string | null {
    const at = this.now();
    if (this.firstStep === null) this.firstStep = event.step - 1;
    this.losses.push(event.loss);
    this.tokensPerSecond.push(event.tokensPerSecond);
    const { every_seconds: everySeconds, every_steps: everySteps } = this.settings;
    const byTime = everySeconds > 0 && at - this.lastLineAt >= everySeconds * 1000;
    const bySteps = everySteps > 0 && event.step % everySteps === 0;
    if (!byTime && !bySteps) return null;
    const line = this.describe(event, at);
    this.lastLineAt = at;
    this.losses = [];
    this.tokensPerSecond = [];
    return line;
  }

  private describe(event: StepEvent, at: number): string {
    const done = event.step - (this.firstStep ?? 0);
    const secondsPerStep = done > 0 ? (at - this.foldStarted) / 1000 / done : 0;
    const foldLeft = Math.max(0, event.totalSteps - event.step) * secondsPerStep;
    // Later folds have as many steps as this one (give or take a post): the run's ETA assumes so,
    // and, like the fold's, that no fold stops early.
    const position = this.folds.indexOf(event.fold);
    const foldsAfter = position === -1 ? 0 : this.folds.length - position - 1;
    const runLeft = foldLeft + foldsAfter * event.totalSteps * secondsPerStep;
    const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
    const percent = Math.floor((100 * event.step) / Math.max(1, event.totalSteps));
    return (
      `fold ${event.fold} step ${event.step}/${event.totalSteps} (${percent}%) epoch ${event.epoch + 1}` +
      ` | loss ${mean(this.losses).toFixed(4)} | ${Math.round(mean(this.tokensPerSecond))} tok/s` +
      ` | ETA fold ${formatDuration(foldLeft)}, run ${formatDuration(runLeft)}`
    );
  }
}

/** 42s, 3m07s, 2h05m. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function writeLine(stream: NodeJS.WritableStream, event: TrainEvent): void {
  const line = describeEvent(event);
  if (line) stream.write(`${line}\n`);
}

export function describeEvent(event: TrainEvent): string | null {
  switch (event.type) {
    case 'run-start':
      return `run ${event.runDir} (folds ${event.folds.join(', ')}${event.parentRunId ? `, MLflow run ${event.parentRunId}` : ''})`;
    case 'fold-start':
      return `fold ${event.fold}: ${event.trainPairs} train / ${event.validationPairs} validation / ${event.testPairs} test pairs, ${event.totalSteps} steps at most`;
    case 'evaluation':
      return `fold ${event.fold} step ${event.step}: validation ${event.value.toFixed(4)} (best ${event.best === null ? '-' : event.best.toFixed(4)}${event.improved ? ', improved' : `, ${event.evaluationsWithoutImprovement} without improvement`})`;
    case 'early-stop':
      return `fold ${event.fold}: early stop at step ${event.step}`;
    case 'fold-end':
      return `fold ${event.fold} done in ${event.seconds.toFixed(1)}s: test F1 ${fmt(event.testMetrics['f1'])}, AP ${fmt(event.testMetrics['average_precision'])}`;
    case 'fold-failed':
      return `fold ${event.fold} FAILED at step ${event.step}: ${event.message}`;
    case 'out-of-memory':
      return `warning: ${event.message}`;
    case 'run-end':
      return `run finished in ${event.seconds.toFixed(1)}s: ${event.summaryPath}`;
    case 'step':
    case 'fold-restart':
      // A restart is a warning the run logs itself (with the run ids), whatever the display.
      return null;
  }
}

function fmt(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(4);
}
