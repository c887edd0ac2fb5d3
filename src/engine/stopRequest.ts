/**
 * How a run is asked to stop: the first Ctrl-C / SIGTERM, or the caller's AbortSignal. The fold
 * trainer finishes the current step, saves a checkpoint and the runs end KILLED; a second Ctrl-C
 * exits at once (infra's interrupt hub).
 */
import { onInterrupt, type Logger } from '../infra/index.js';

export interface StopRequest {
  readonly requested: boolean;
  /** Aborted when a stop is requested (the tracking runs then end KILLED). */
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * Listens for the first interrupt (and the caller's signal) until disposed. `finishing` names what
 * is completed before stopping, for the warning the user sees.
 */
export function listenForStop(
  logger: Logger,
  external?: AbortSignal,
  finishing = 'the current step',
): StopRequest {
  const abort = new AbortController();
  const request = () => {
    if (abort.signal.aborted) return;
    abort.abort();
    logger.warn(`interrupt received: finishing ${finishing}, then stopping (again to exit now)`);
  };
  const stopListening = onInterrupt(request);
  external?.addEventListener('abort', request, { once: true });
  if (external?.aborted) request();
  return {
    get requested() {
      return abort.signal.aborted;
    },
    signal: abort.signal,
    dispose: () => {
      stopListening();
      external?.removeEventListener('abort', request);
    },
  };
}
