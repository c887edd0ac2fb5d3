/**
 * Live progress for a training run: one bar per fold on a TTY (step/total, loss, lr, tokens/s,
 * ETA, best validation score), one line per evaluation otherwise. Fed by the run's events.
 */
import { SingleBar, Presets } from 'cli-progress';

import type { TrainEvent, TrainEventHandler } from './events.js';

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

export function createProgressReporter(
  mode: ProgressMode,
  stream: NodeJS.WriteStream = process.stderr,
): TrainEventHandler {
  const resolved = mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : mode;
  if (resolved === 'none') return () => {};
  if (resolved === 'lines') return (event) => writeLine(stream, event);
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
