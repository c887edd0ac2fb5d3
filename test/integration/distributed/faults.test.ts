/**
 * Faults in a 2-rank training run (ranks started as torchrun would, from RANK, WORLD_SIZE,
 * MASTER_ADDR, MASTER_PORT): a rank killed in folds mode ends the other within the timeout with
 * a message naming it, every tracking run it left ends FAILED, and --resume finishes the run
 * keeping the finished folds; a rank that hangs in ddp mode fails the other's step after
 * training.distributed.timeout_s, named. Nothing is left running.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { launchVariables } from '../../../src/engine/index.js';
import { freePort } from '../../../src/cli/launcher.js';
import { MlflowClient, startLocalServer, type LocalServer } from '../../../src/tracking/index.js';
import { smallRunOverrides } from '../engine/helpers.js';
import { mlflowBin, serverStartTimeoutMs, tempDir, uniqueName } from '../tracking/helpers.js';
import {
  describeWithGloo,
  endsWithin,
  killAll,
  killTree,
  startProcess,
  trainCli,
  waitFor,
  type StartedProcess,
} from './helpers.js';

type RunState = {
  parentRunId: string | null;
  folds: Record<string, { runId: string | null; status: string }>;
};

function readState(runDir: string): RunState | null {
  try {
    return JSON.parse(readFileSync(join(runDir, 'run-state.json'), 'utf8')) as RunState;
  } catch {
    return null;
  }
}

async function startRanks(overrides: string[], cwd: string): Promise<StartedProcess[]> {
  const port = await freePort();
  return [0, 1].map((rank) =>
    startProcess(process.execPath, [trainCli, ...overrides], {
      cwd,
      env: launchVariables(rank, 2, port),
      label: `rank ${rank}`,
    }),
  );
}

describeWithGloo('faults in a 2-rank training run', () => {
  let server: LocalServer;
  let client: MlflowClient;
  const dir = tempDir('dist-faults');

  beforeAll(async () => {
    server = await startLocalServer({
      workDir: join(dir, 'mlflow'),
      mlflowBin,
      startTimeoutMs: serverStartTimeoutMs,
    });
    client = new MlflowClient({ trackingUri: server.uri });
  }, serverStartTimeoutMs + 10_000);

  afterEach(killAll);

  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  test('folds mode: a killed rank ends the other, named; runs FAILED; --resume keeps finished folds', async () => {
    const overrides = smallRunOverrides(dir, 'killed', [
      'data.splits.n_splits=3',
      'training.max_epochs=3',
      'training.micro_batch_size=16',
      'training.effective_batch_size=16',
      'training.threads=1',
      'training.distributed.mode=folds',
      'training.distributed.timeout_s=20',
      'logging.mlflow.enabled=true',
      `logging.mlflow.tracking_uri=${server.uri}`,
      `logging.mlflow.experiment_name=${uniqueName('faults')}`,
    ]);
    const runDir = join(dir, 'killed');
    const [zero, one] = await startRanks(overrides, dir);
    // Rank 1 has finished its fold (1) and waits for rank 0, which trains fold 2.
    await waitFor(
      () => {
        const state = readState(runDir);
        return state?.folds['1']?.status === 'done' && state.folds['2']?.status === 'running';
      },
      400_000,
      'fold 1 done and fold 2 running',
    );
    killTree(one!);
    const oneEnd = await endsWithin(one!, 30_000);
    expect(oneEnd.signal).toBe('SIGKILL');
    const killedAt = Date.now();
    const zeroEnd = await endsWithin(zero!, 60_000);
    expect(zeroEnd.code).toBe(1);
    expect((Date.now() - killedAt) / 1000).toBeLessThan(20 + 15);
    expect(zero!.stderr).toMatch(
      new RegExp(`rank 0: rank 1 \\(pid ${one!.child.pid} on .+\\) has exited`),
    );

    const state = readState(runDir)!;
    expect(state.folds['0']?.status).toBe('done');
    expect(state.folds['1']?.status).toBe('done');
    expect(state.folds['2']?.status).toBe('running');
    const parent = await client.getRun(state.parentRunId!);
    expect(parent.info.status).toBe('FAILED');
    expect(parent.tags['mentallam.error']).toMatch(/rank 1 \(pid \d+ on .+\) has exited/);
    const statusOf = async (fold: string) =>
      (await client.getRun(state.folds[fold]!.runId!)).info.status;
    expect(await statusOf('0')).toBe('FINISHED');
    expect(await statusOf('1')).toBe('FINISHED');
    expect(await statusOf('2')).toBe('FAILED');
    const finishedFiles = ['0', '1'].map((fold) =>
      readFileSync(join(runDir, `fold_${fold}`, 'result.json'), 'utf8'),
    );

    const resumed = startProcess(process.execPath, [trainCli, '--nproc', '2', '--resume', runDir], {
      cwd: dir,
      label: 'mentallam-train --nproc 2 --resume',
    });
    const resumedEnd = await endsWithin(resumed, 400_000);
    expect({ code: resumedEnd.code, stderr: resumedEnd.code === 0 ? '' : resumed.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    // The finished folds were kept as they were; the interrupted one ran again in its own run.
    expect(
      ['0', '1'].map((fold) => readFileSync(join(runDir, `fold_${fold}`, 'result.json'), 'utf8')),
    ).toEqual(finishedFiles);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as {
      parentRunId: string;
      folds: { fold: number; runId: string }[];
    };
    expect(summary.parentRunId).toBe(state.parentRunId);
    // Folds 0 and 1 keep their runs; fold 2 had no checkpoint, so it restarted from step 0 in a
    // new child run that supersedes the killed one (which stays FAILED): no step logged twice.
    const restarted = summary.folds.find((fold) => fold.fold === 2)!.runId;
    expect(summary.folds.map((fold) => [fold.fold, fold.runId])).toEqual([
      [0, state.folds['0']!.runId],
      [1, state.folds['1']!.runId],
      [2, restarted],
    ]);
    expect(restarted).not.toBe(state.folds['2']!.runId);
    expect((await client.getRun(state.parentRunId!)).info.status).toBe('FINISHED');
    const killed = await client.getRun(state.folds['2']!.runId!);
    expect(killed.info.status).toBe('FAILED');
    expect(killed.tags['mentallam.superseded_by']).toBe(restarted);
    const replacement = await client.getRun(restarted);
    expect(replacement.info.status).toBe('FINISHED');
    expect(replacement.tags['mentallam.supersedes']).toBe(state.folds['2']!.runId);
  }, 1_200_000);

  test('ddp mode: a rank that hangs fails the other after the timeout, named', async () => {
    const overrides = smallRunOverrides(dir, 'hung', [
      'training.max_epochs=3',
      'training.micro_batch_size=8',
      'training.effective_batch_size=16',
      'training.threads=1',
      'training.distributed.mode=ddp',
      'training.distributed.timeout_s=5',
    ]);
    const runDir = join(dir, 'hung');
    const [zero, one] = await startRanks(overrides, dir);
    await waitFor(
      () => readState(runDir)?.folds['0']?.status === 'running',
      400_000,
      'fold 0 to start',
    );
    killTree(one!, 'SIGSTOP');
    const stoppedAt = Date.now();
    const zeroEnd = await endsWithin(zero!, 90_000);
    const seconds = (Date.now() - stoppedAt) / 1000;
    killTree(one!);
    expect(zeroEnd.code).toBe(1);
    expect(zero!.stderr).toMatch(
      new RegExp(`rank 1 \\(pid ${one!.child.pid} on .+\\) has given no sign of life for`),
    );
    expect(seconds).toBeLessThan(5 + 30);
    // The fold is left to a resume; only rank 0 wrote the run directory's files.
    expect(readState(runDir)?.folds['0']?.status).toBe('running');
    expect(existsSync(join(runDir, 'summary.json'))).toBe(false);
  }, 600_000);
});
