/**
 * `mentallam sync`: replaying a run directory's spool into MLflow, after checking that the server
 * is the one the spool was written for, and `sync --status`: what the spool holds.
 */
import { existsSync, statSync } from 'node:fs';
import type { Logger } from '../infra/index.js';
import type { MlflowClient } from './client.js';
import { MlflowApiError, SpoolTargetError } from './errors.js';
import {
  isUnreachableError,
  readSpool,
  SpoolingTracker,
  type ReplayResult,
  type SpoolContents,
  type SpoolEntry,
} from './spool.js';

/**
 * Replays `<runDir>/tracking-spool.jsonl` into MLflow (what `mentallam sync <run dir>` runs). First
 * checks that every run the pending calls name exists and is active on this server, in an active
 * experiment (the one recorded in the spool, when it was); if not, throws SpoolTargetError before
 * sending anything, leaving the spool untouched. Safe to run any number of times: replayed entries
 * are recorded in tracking-spool.done. A result with `remaining > 0` stopped on a failure that a
 * later sync can overcome (`stoppedBy` says which).
 */
export async function syncSpool(
  runDir: string,
  client: MlflowClient,
  options: {
    logger?: Logger;
    /** How messages name the server (default its URI), e.g. with the store a local server serves. */
    server?: string;
  } = {},
): Promise<ReplayResult> {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory())
    throw new SpoolTargetError(`${runDir} is not a directory: expected a run directory`);
  const tracker = new SpoolingTracker(client, {
    runDir,
    probeIntervalMs: 0,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  await checkSpoolTarget(client, tracker.pendingEntries(), tracker.spoolPath, options.server);
  return tracker.replay();
}

/** The distinct runs of `entries`, first appearance first, with what the spool recorded of them. */
function spooledRuns(entries: readonly SpoolEntry[]): Map<string, SpoolEntry> {
  const runs = new Map<string, SpoolEntry>();
  for (const entry of entries) if (!runs.has(entry.runId)) runs.set(entry.runId, entry);
  return runs;
}

/**
 * Throws SpoolTargetError unless every run named by `entries` exists and is active on the client's
 * server, in an experiment that exists and is active (and is the recorded one).
 */
export async function checkSpoolTarget(
  client: MlflowClient,
  entries: readonly SpoolEntry[],
  spoolPath: string,
  server: string = client.trackingUri,
): Promise<void> {
  const untouched = `nothing was replayed and ${spoolPath} is unchanged`;
  const writtenFor = (entry: SpoolEntry) =>
    entry.server !== undefined && entry.server !== client.trackingUri
      ? ` (the spool was written while logging to ${entry.server})`
      : '';
  const checkedExperiments = new Set<string>();
  for (const [runId, first] of spooledRuns(entries)) {
    let run;
    try {
      run = await client.getRun(runId);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (isUnreachableError(error, client.retryPolicy.retryableStatuses))
        throw new SpoolTargetError(
          `The MLflow server at ${server} is unreachable (${message}); ${untouched}. Run sync again when it answers.`,
        );
      if (error instanceof MlflowApiError && error.status === 404) {
        const experiment =
          first.experimentId === undefined ? '' : ` (experiment ${first.experimentId})`;
        throw new SpoolTargetError(
          `Run ${runId}${experiment} does not exist on the MLflow server at ${server}${writtenFor(first)}: ` +
            `this is not the server (or backend store) the run was logged to; ${untouched}. ` +
            'Point MLFLOW_TRACKING_URI at that server and run sync again.',
        );
      }
      throw new SpoolTargetError(
        `Could not look up run ${runId} on the MLflow server at ${server}: ${message}; ${untouched}.`,
      );
    }
    if (first.experimentId !== undefined && run.info.experimentId !== first.experimentId)
      throw new SpoolTargetError(
        `Run ${runId} on the MLflow server at ${server} belongs to experiment ${run.info.experimentId}, ` +
          `but the spool recorded experiment ${first.experimentId}${writtenFor(first)}; ${untouched}.`,
      );
    if (run.info.lifecycleStage === 'deleted')
      throw new SpoolTargetError(
        `Run ${runId} is deleted on the MLflow server at ${server}; restore it ` +
          `(mlflow runs restore --run-id ${runId}) and run sync again; ${untouched}.`,
      );
    const experimentId = run.info.experimentId;
    if (checkedExperiments.has(experimentId)) continue;
    checkedExperiments.add(experimentId);
    const experiment = await client.getExperiment(experimentId);
    if (experiment === undefined)
      throw new SpoolTargetError(
        `Experiment ${experimentId} of run ${runId} does not exist on the MLflow server at ${server}; ${untouched}.`,
      );
    if (experiment.lifecycleStage === 'deleted')
      throw new SpoolTargetError(
        `Experiment '${experiment.name}' (${experimentId}) of run ${runId} is deleted on the MLflow server at ${server}; ` +
          `restore it (mlflow experiments restore --experiment-id ${experimentId}) and run sync again; ${untouched}.`,
      );
  }
}

/** What `mentallam sync --status` reports: read from the files only, no server needed. */
export type SpoolStatus = SpoolContents;

export function readSpoolStatus(runDir: string): SpoolStatus {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory())
    throw new SpoolTargetError(`${runDir} is not a directory: expected a run directory`);
  return readSpool(runDir);
}

function countOps(entries: readonly SpoolEntry[]): string {
  const counts = new Map<string, number>();
  for (const entry of entries) counts.set(entry.op, (counts.get(entry.op) ?? 0) + 1);
  return [...counts].map(([op, count]) => `${op} ${count}`).join(', ');
}

/** The status as lines of text: counts, pending calls per run, and every rejected call with its reason. */
export function formatSpoolStatus(status: SpoolStatus): string {
  const sent = status.done.size - status.rejected.length;
  const lines = [
    `${status.spoolPath}: ${status.pending.length} pending, ${sent} sent, ${status.rejected.length} rejected`,
  ];
  if (status.entries.length === 0)
    lines.push('nothing was spooled: every tracking call reached MLflow');
  if (status.pending.length > 0) {
    lines.push('pending (sent by `mentallam sync <run dir>`, oldest first):');
    for (const [runId, first] of spooledRuns(status.pending)) {
      const ofRun = status.pending.filter((entry) => entry.runId === runId);
      const where = [
        first.experimentId === undefined ? undefined : `experiment ${first.experimentId}`,
        first.server === undefined ? undefined : `for ${first.server}`,
      ].filter((part) => part !== undefined);
      lines.push(
        `  run ${runId}${where.length > 0 ? ` (${where.join(', ')})` : ''}: ${ofRun.length} calls (${countOps(ofRun)}), ` +
          `first spooled ${new Date(first.spooledAt).toISOString()}`,
      );
    }
  }
  if (status.rejected.length > 0) {
    lines.push('rejected (refused by the server for good; not retried):');
    for (const rejected of status.rejected) {
      const what =
        rejected.entry === undefined
          ? 'call'
          : `${rejected.entry.op} for run ${rejected.entry.runId}`;
      lines.push(
        `  #${rejected.seq} ${what}${rejected.at === undefined ? '' : ` at ${rejected.at}`}: ${rejected.error}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
