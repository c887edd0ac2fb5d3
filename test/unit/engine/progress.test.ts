import { PassThrough } from 'node:stream';

import type { TrainEvent } from '../../../src/engine/events.js';
import {
  createProgressReporter,
  formatDuration,
  ProgressLines,
} from '../../../src/engine/progress.js';

function stepEvent(step: number, loss: number, fold = 1, totalSteps = 100): TrainEvent {
  return {
    type: 'step',
    fold,
    step,
    totalSteps,
    epoch: 0,
    loss,
    lr: 1e-3,
    gradNorm: 1,
    tokensPerSecond: 1000 + step,
  };
}

const foldStart = (fold: number): TrainEvent => ({
  type: 'fold-start',
  fold,
  totalSteps: 100,
  trainPairs: 1600,
  validationPairs: 160,
  testPairs: 400,
});

/** A clock the test moves by hand (milliseconds). */
function manualClock() {
  let t = 1_000_000;
  return { now: () => t, advance: (seconds: number) => (t += seconds * 1000) };
}

describe('progress lines without a TTY', () => {
  test('a line once every_seconds passed, with step/total, mean loss, tokens/s and both ETAs', () => {
    const clock = manualClock();
    const lines = new ProgressLines({ every_seconds: 30, every_steps: 0 }, clock.now);
    expect(
      lines.other({ type: 'run-start', runDir: 'r', parentRunId: null, folds: [0, 1, 2] }),
    ).toMatch(/^run r/);
    lines.other(foldStart(1));
    // 12 s per step: steps 1 and 2 are within 30 s of the fold start, step 3 (36 s) is not.
    const out: (string | null)[] = [];
    for (let step = 1; step <= 3; step++) {
      clock.advance(12);
      out.push(lines.step(stepEvent(step, step / 10) as Extract<TrainEvent, { type: 'step' }>));
    }
    expect(out.slice(0, 2)).toEqual([null, null]);
    // 97 steps left at 12 s = 19m24s; one more fold of 100 steps (fold 2) = +20m.
    expect(out[2]).toBe(
      'fold 1 step 3/100 (3%) epoch 1 | loss 0.2000 | 1002 tok/s | ETA fold 19m24s, run 39m24s',
    );
    // The next window starts at the last line: means cover steps 4-6 only.
    for (let step = 4; step <= 6; step++) {
      clock.advance(12);
      const line = lines.step(stepEvent(step, 1) as Extract<TrainEvent, { type: 'step' }>);
      if (step < 6) expect(line).toBeNull();
      else expect(line).toMatch(/step 6\/100 .* loss 1\.0000 \| 1005 tok\/s/);
    }
  });

  test('every_steps prints on multiples of N whatever the clock; 0 turns a trigger off', () => {
    const clock = manualClock();
    const lines = new ProgressLines({ every_seconds: 0, every_steps: 5 }, clock.now);
    lines.other(foldStart(0));
    const printed: number[] = [];
    for (let step = 1; step <= 12; step++) {
      clock.advance(1000);
      if (lines.step(stepEvent(step, 0.5, 0) as Extract<TrainEvent, { type: 'step' }>))
        printed.push(step);
    }
    expect(printed).toEqual([5, 10]);
  });

  test('a resumed fold times only the steps this process ran; the last fold has run ETA = fold ETA', () => {
    const clock = manualClock();
    const lines = new ProgressLines({ every_seconds: 0, every_steps: 10 }, clock.now);
    lines.other({ type: 'run-start', runDir: 'r', parentRunId: null, folds: [0, 1] });
    lines.other(foldStart(1));
    let line: string | null = null;
    for (let step = 51; step <= 60; step++) {
      clock.advance(2);
      line = lines.step(stepEvent(step, 0.3) as Extract<TrainEvent, { type: 'step' }>);
    }
    // 10 steps in 20 s = 2 s/step, 40 left = 1m20s; fold 1 is the last one.
    expect(line).toMatch(/step 60\/100 \(60%\) .* ETA fold 1m20s, run 1m20s$/);
  });

  test('the reporter writes the lines and the event lines to a non-TTY stream', () => {
    const clock = manualClock();
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    let written = '';
    (stream as unknown as PassThrough).on('data', (chunk: Buffer) => (written += chunk.toString()));
    const report = createProgressReporter(
      { mode: 'auto', every_seconds: 30, every_steps: 0 },
      stream,
      clock.now,
    );
    report(foldStart(0));
    clock.advance(31);
    report(stepEvent(1, 0.7, 0));
    report({ type: 'early-stop', fold: 0, step: 1, best: 0.5 });
    expect(written.split('\n')).toEqual([
      expect.stringMatching(/^fold 0: 1600 train/),
      expect.stringMatching(/^fold 0 step 1\/100 \(1%\) epoch 1 \| loss 0\.7000 \| 1001 tok\/s/),
      'fold 0: early stop at step 1',
      '',
    ]);
  });

  test('mode none writes nothing', () => {
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    let written = '';
    (stream as unknown as PassThrough).on('data', (chunk: Buffer) => (written += chunk.toString()));
    const report = createProgressReporter(
      { mode: 'none', every_seconds: 1, every_steps: 1 },
      stream,
    );
    report(foldStart(0));
    report(stepEvent(1, 0.7, 0));
    expect(written).toBe('');
  });

  test('durations read as seconds, minutes or hours', () => {
    expect([0, 42, 187, 7500].map(formatDuration)).toEqual(['0s', '42s', '3m07s', '2h05m']);
  });
});
