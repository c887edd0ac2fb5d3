/**
 * What a run needs to be resumed: run-state.json in the run directory records the MLflow parent
 * and child run ids and which folds finished; `continueRun` reopens an MLflow run instead of
 * creating a new one, so a resumed run keeps logging into the same runs.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { writeJsonAtomic } from '../infra/index.js';
import {
  ActiveRun,
  InterruptedError,
  errorTag,
  type MlflowClient,
  type RunTracker,
} from '../tracking/index.js';

export interface RunState {
  parentRunId: string | null;
  /** Fold index -> its child run id and whether the fold finished. */
  /** 'failed': stopped by a NaN/Inf loss; a resume trains it again. */
  folds: Record<
    string,
    { runId: string | null; status: 'running' | 'done' | 'failed'; error?: string }
  >;
}

const runStateFile = 'run-state.json';

export async function readRunState(runDir: string): Promise<RunState | null> {
  const path = join(runDir, runStateFile);
  if (!existsSync(path)) return null;
  return JSON.parse(await readFile(path, 'utf8')) as RunState;
}

export async function writeRunState(runDir: string, state: RunState): Promise<void> {
  await writeJsonAtomic(join(runDir, runStateFile), state);
}

/**
 * Reopens an existing MLflow run (status RUNNING again), runs `fn` in it, and ends it FINISHED,
 * FAILED (error tag) or KILLED (interrupt), like the run contexts of the tracking module.
 */
export async function continueRun<T>(
  tracker: RunTracker,
  client: MlflowClient,
  runId: string,
  options: { inheritedTags?: Record<string, string>; parentRunId?: string; signal?: AbortSignal },
  fn: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  const run = await client.getRun(runId);
  await tracker.updateRun(runId, { status: 'RUNNING' });
  const active = new ActiveRun(
    tracker,
    run,
    run.info.experimentId,
    options.inheritedTags ?? {},
    options.parentRunId,
  );
  let status: 'FINISHED' | 'FAILED' | 'KILLED' = 'FINISHED';
  try {
    const result = await fn(active);
    if (options.signal?.aborted) status = 'KILLED';
    return result;
  } catch (error) {
    status = error instanceof InterruptedError || options.signal?.aborted ? 'KILLED' : 'FAILED';
    if (status === 'FAILED') {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      await tracker.setTag(runId, errorTag, message).catch(() => undefined);
    }
    throw error;
  } finally {
    await tracker.updateRun(runId, { status, endTime: Date.now() }).catch(() => undefined);
    if (!options.parentRunId) await tracker.flush?.();
  }
}
