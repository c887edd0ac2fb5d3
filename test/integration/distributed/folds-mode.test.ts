/**
 * training.distributed.mode=folds with 2 ranks (mentallam-train --nproc 2): every fold has
 * exactly the files and metrics of a single-process run, and a real MLflow server holds one
 * parent run (rank 0's) with every fold's run as its child, whichever rank trained it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { MlflowClient, startLocalServer, type LocalServer } from '../../../src/tracking/index.js';
import { smallRunOverrides } from '../engine/helpers.js';
import { mlflowBin, serverStartTimeoutMs, tempDir, uniqueName } from '../tracking/helpers.js';
import { describeWithGloo, endsWithin, killAll, startProcess, trainCli } from './helpers.js';

/** Every file under a run directory, relative, sorted (the spool files of tracking aside). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.filter((path) => !path.startsWith('tracking-spool')).sort();
}

function json(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

describeWithGloo('folds mode: 2 ranks take the folds round-robin', () => {
  let server: LocalServer;
  let client: MlflowClient;
  const dir = tempDir('dist-folds');

  beforeAll(async () => {
    server = await startLocalServer({
      workDir: join(dir, 'mlflow'),
      mlflowBin,
      startTimeoutMs: serverStartTimeoutMs,
    });
    client = new MlflowClient({ trackingUri: server.uri });
  }, serverStartTimeoutMs + 10_000);

  afterAll(async () => {
    await killAll();
    await client?.close();
    await server?.stop();
  });

  test('each fold gets exactly the single-process metrics; one parent run, every fold its child', async () => {
    // One thread per process on both sides, so the arithmetic is the same.
    const training = [
      'data.splits.n_splits=3',
      'training.max_epochs=1',
      'training.micro_batch_size=16',
      'training.effective_batch_size=16',
      'training.threads=1',
    ];
    const single = await trainFolds({
      overrides: smallRunOverrides(dir, 'single', training),
      cwd: dir,
    });
    const experiment = uniqueName('folds');
    const ranks = startProcess(
      process.execPath,
      [
        trainCli,
        '--nproc',
        '2',
        ...smallRunOverrides(dir, 'folds', [
          ...training,
          'training.distributed.mode=folds',
          'training.distributed.timeout_s=60',
          'logging.mlflow.enabled=true',
          `logging.mlflow.tracking_uri=${server.uri}`,
          `logging.mlflow.experiment_name=${experiment}`,
        ]),
      ],
      { cwd: dir, label: 'mentallam-train --nproc 2' },
    );
    const end = await endsWithin(ranks, 400_000);
    expect({ code: end.code, stderr: end.code === 0 ? '' : ranks.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    const runDir = join(dir, 'folds');

    // The same files as one process (no per-rank leftovers), the same numbers in each fold.
    expect(filesUnder(runDir)).toEqual(filesUnder(single.runDir));
    for (const fold of [0, 1, 2]) {
      for (const file of ['metrics.json', 'predictions.json', 'thresholds.json', 'curves.json']) {
        expect(json(join(runDir, `fold_${fold}`, file))).toEqual(
          json(join(single.runDir, `fold_${fold}`, file)),
        );
      }
    }
    const summary = json(join(runDir, 'summary.json')) as {
      pooled: Record<string, number>;
      folds: { fold: number; runId: string | null; testMetrics: Record<string, number> }[];
      parentRunId: string;
    };
    expect(summary.pooled).toEqual(single.pooled);
    expect(summary.folds.map((fold) => fold.fold)).toEqual([0, 1, 2]);
    expect(summary.folds.map((fold) => fold.testMetrics)).toEqual(
      single.folds.map((fold) => fold.testMetrics),
    );
    const state = json(join(runDir, 'run-state.json')) as {
      parentRunId: string;
      folds: Record<string, { runId: string; status: string }>;
    };
    expect(Object.values(state.folds).map((fold) => fold.status)).toEqual(['done', 'done', 'done']);

    const parent = await client.getRun(summary.parentRunId);
    expect(parent.info.status).toBe('FINISHED');
    expect(parent.metrics['pooled_f1']).toBe(single.pooled['f1']);
    const children = await client.searchRuns({
      experimentIds: [parent.info.experimentId],
      filter: `tags.mlflow.parentRunId = '${summary.parentRunId}'`,
    });
    expect(children.map((child) => child.info.runName).sort()).toEqual([
      'fold_0',
      'fold_1',
      'fold_2',
    ]);
    for (const child of children) {
      const fold = Number(child.info.runName.slice('fold_'.length));
      expect(child.info.status).toBe('FINISHED');
      // Round-robin: rank 0 trained folds 0 and 2, rank 1 fold 1.
      expect(child.tags['mentallam.rank']).toBe(String(fold % 2));
      expect(child.info.runId).toBe(state.folds[String(fold)]!.runId);
      expect(child.metrics['test_f1']).toBe(summary.folds[fold]!.testMetrics['test_f1']);
    }
    const runs = await client.searchRuns({ experimentIds: [parent.info.experimentId] });
    expect(runs).toHaveLength(4);
  }, 900_000);
});
