import { eventStream, type TrainEvent } from '../../../src/engine/events.js';
import { describeEvent } from '../../../src/engine/progress.js';
import { noopSink } from '../../../src/engine/trackingSink.js';

const step: TrainEvent = {
  type: 'step',
  fold: 0,
  step: 1,
  totalSteps: 4,
  epoch: 0,
  loss: 0.7,
  lr: 1e-3,
  gradNorm: 1,
  tokensPerSecond: 100,
};

describe('the event stream', () => {
  test('every listener sees every event, in order, each awaited before the next', async () => {
    const seen: string[] = [];
    const slow = async (event: TrainEvent) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.push(`sink ${event.type}`);
    };
    const emit = eventStream([slow, null, (event) => seen.push(`user ${event.type}`)]);
    await emit(step);
    await emit({ type: 'early-stop', fold: 0, step: 1, best: 0.5 });
    expect(seen).toEqual(['sink step', 'user step', 'sink early-stop', 'user early-stop']);
  });

  test("a listener's error stops the run at that event", async () => {
    const emit = eventStream([
      () => {
        throw new Error('refused');
      },
    ]);
    await expect(emit(step)).rejects.toThrow('refused');
  });

  test('an out-of-memory back-off reads as a warning', () => {
    expect(
      describeEvent({
        type: 'out-of-memory',
        fold: 1,
        step: 3,
        microBatchSize: 4,
        accumulationSteps: 4,
        message: 'fold 1 step 3: out of memory',
      }),
    ).toBe('warning: fold 1 step 3: out of memory');
  });
});

describe('the no-op tracking sink', () => {
  test('runs the bodies without a run id and records nothing', async () => {
    const result = await noopSink.run('ignored', (runId) =>
      noopSink.fold(0, { kind: 'continue', runId: 'ignored' }, async (foldRunId) => [
        runId,
        foldRunId,
      ]),
    );
    expect(result).toEqual([null, null]);
    await expect(noopSink.onEvent(step)).resolves.toBeUndefined();
  });
});
