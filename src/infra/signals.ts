export type InterruptSignal = 'SIGINT' | 'SIGTERM';
export type InterruptHandler = (signal: InterruptSignal) => void;

/** Exit code of a process stopped by Ctrl-C (128 + SIGINT), used for the forced second interrupt. */
export const interruptedExitCode = 130;

interface ProcessLike {
  on(event: InterruptSignal, listener: (signal: InterruptSignal) => void): unknown;
  off(event: InterruptSignal, listener: (signal: InterruptSignal) => void): unknown;
}

/**
 * The state behind onInterrupt, injectable so tests can drive it without signalling the test
 * runner. The first signal calls every handler once (stop after the current step, write what is
 * done); a second signal means the user does not want to wait: exit at once.
 */
export function createInterruptHub(
  proc: ProcessLike = process,
  exit: (code: number) => void = (code) => process.exit(code),
) {
  const handlers = new Set<InterruptHandler>();
  let interrupted = false;

  const listener = (signal: InterruptSignal) => {
    if (interrupted) {
      exit(interruptedExitCode);
      return;
    }
    interrupted = true;
    for (const handler of [...handlers]) {
      try {
        handler(signal);
      } catch {
        // One failing handler must not keep the others from running.
      }
    }
  };

  function attach(): void {
    proc.on('SIGINT', listener);
    proc.on('SIGTERM', listener);
  }
  function detach(): void {
    proc.off('SIGINT', listener);
    proc.off('SIGTERM', listener);
  }

  return {
    onInterrupt(handler: InterruptHandler): () => void {
      // Listeners are installed only while someone listens, so Node's default (die on Ctrl-C)
      // applies whenever nothing needs a graceful stop.
      if (handlers.size === 0) attach();
      handlers.add(handler);
      return () => {
        if (!handlers.delete(handler)) return;
        if (handlers.size === 0) {
          detach();
          interrupted = false;
        }
      };
    },
    get interrupted(): boolean {
      return interrupted;
    },
  };
}

const processHub = createInterruptHub();

/**
 * Registers `handler` for the first SIGINT/SIGTERM; a second one exits with code 130 without
 * waiting. Returns a function that unregisters the handler.
 */
export function onInterrupt(handler: InterruptHandler): () => void {
  return processHub.onInterrupt(handler);
}

/** Whether an interrupt arrived while handlers were registered (a cheap check for loops). */
export function wasInterrupted(): boolean {
  return processHub.interrupted;
}
