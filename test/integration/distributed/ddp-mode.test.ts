/**
 * training.distributed.mode=ddp with 2 ranks (mentallam-train --nproc 2): each fold trained
 * data-parallel ends with adapters within 1e-5 of one process training the same global batches
 * (fp32, the tiny model, no dropout: dropout masks are drawn per process), and only rank 0
 * writes the run directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { inspectSafetensors, readSafetensorsTensor } from '../../../src/native/index.js';
import { smallRunOverrides } from '../engine/helpers.js';
import { tempDir } from '../tracking/helpers.js';
import { describeWithGloo, endsWithin, killAll, startProcess, trainCli } from './helpers.js';

async function maxAdapterDifference(a: string, b: string): Promise<number> {
  const fileA = join(a, 'adapter_model.safetensors');
  const fileB = join(b, 'adapter_model.safetensors');
  const names = (await inspectSafetensors(fileA)).map((entry) => entry.name);
  expect((await inspectSafetensors(fileB)).map((entry) => entry.name)).toEqual(names);
  let worst = 0;
  for (const name of names) {
    const x = (await readSafetensorsTensor(fileA, name)).data;
    const y = (await readSafetensorsTensor(fileB, name)).data;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

describeWithGloo('ddp mode: every fold data-parallel over 2 ranks', () => {
  const dir = tempDir('dist-ddp');
  afterAll(killAll);

  test('adapters within 1e-5 of one process with the same global batch', async () => {
    // Global batch 16 = 2 micro-batches of 8: one per rank per step. One evaluation (at the end
    // of the single epoch), so the best adapter is the trained one.
    const training = [
      'training.max_epochs=1',
      'training.micro_batch_size=8',
      'training.effective_batch_size=16',
      'training.lr_schedule=linear',
      'training.warmup_ratio=0.2',
      'training.threads=1',
      'model.dora.dropout=0',
    ];
    const single = await trainFolds({
      overrides: smallRunOverrides(dir, 'single', training),
      cwd: dir,
    });
    const ranks = startProcess(
      process.execPath,
      [
        trainCli,
        '--nproc',
        '2',
        ...smallRunOverrides(dir, 'ddp', [
          ...training,
          'training.distributed.mode=ddp',
          'training.distributed.timeout_s=60',
          // Small buckets: several all-reduces per step, started during backward.
          'training.distributed.bucket_mb=0.01',
          'logging.level=info',
        ]),
      ],
      { cwd: dir, label: 'mentallam-train --nproc 2 (ddp)' },
    );
    const end = await endsWithin(ranks, 400_000);
    expect({ code: end.code, stderr: end.code === 0 ? '' : ranks.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    // Both ranks joined, in ddp mode (rank 1's lines are marked by the launcher).
    expect(ranks.stderr).toMatch(/\[rank 1\] .*joining the process group.*"mode":"ddp"/);
    const runDir = join(dir, 'ddp');
    for (const fold of [0, 1]) {
      const difference = await maxAdapterDifference(
        join(single.runDir, `fold_${fold}`, 'best_adapter'),
        join(runDir, `fold_${fold}`, 'best_adapter'),
      );
      expect(difference).toBeLessThan(1e-5);
      // The same steps, and the train loss is the global batch's (every rank's examples).
      const metrics = (path: string) =>
        JSON.parse(readFileSync(join(path, `fold_${fold}`, 'metrics.json'), 'utf8')) as {
          steps: number;
          validationHistory: { step: number; trainLoss?: number }[];
        };
      const ddp = metrics(runDir);
      const reference = metrics(single.runDir);
      expect(ddp.steps).toBe(reference.steps);
      expect(ddp.validationHistory.map((entry) => entry.step)).toEqual(
        reference.validationHistory.map((entry) => entry.step),
      );
      ddp.validationHistory.forEach((entry, i) =>
        expect(entry.trainLoss).toBeCloseTo(reference.validationHistory[i]!.trainLoss!, 5),
      );
    }
    // Only rank 0 wrote: its copies of the fold trainer's files are gone with the run.
    expect(existsSync(join(runDir, 'ranks'))).toBe(false);
    expect(existsSync(join(runDir, 'summary.json'))).toBe(true);
  }, 900_000);
  test('adapters on the top layer only, from the frozen-bottom cache: every adapter tensor is all-reduced', async () => {
    // The tiny model has 2 layers: layer 1 and the score head train, layer 0 comes from each
    // rank's cache. A tensor left out of the all-reduce would leave rank 0's adapter apart from
    // the single process's.
    const training = [
      'training.max_epochs=1',
      'training.micro_batch_size=8',
      'training.effective_batch_size=16',
      'training.threads=1',
      'training.folds=[0]',
      'model.dora.dropout=0',
      'model.dora.layers={top: 1}',
    ];
    const single = await trainFolds({
      overrides: smallRunOverrides(dir, 'single-top', training),
      cwd: dir,
    });
    const ranks = startProcess(
      process.execPath,
      [
        trainCli,
        '--nproc',
        '2',
        ...smallRunOverrides(dir, 'ddp-top', [
          ...training,
          'training.distributed.mode=ddp',
          'training.distributed.timeout_s=60',
          'training.distributed.bucket_mb=0.01',
          'logging.level=info',
        ]),
      ],
      { cwd: dir, label: 'mentallam-train --nproc 2 (ddp, top layer)' },
    );
    const end = await endsWithin(ranks, 400_000);
    expect({ code: end.code, stderr: end.code === 0 ? '' : ranks.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    // Each rank filled its own cache.
    expect(ranks.stderr).toMatch(/\[rank 1\] .*frozen-bottom cache: the input of layer 1/);
    expect(ranks.stderr).toMatch(/^(?!\[rank).*frozen-bottom cache: the input of layer 1/m);
    const adapter = join(dir, 'ddp-top', 'fold_0', 'best_adapter');
    const names = (await inspectSafetensors(join(adapter, 'adapter_model.safetensors'))).map(
      (entry) => entry.name,
    );
    expect(names.some((name) => name.includes('.layers.1.'))).toBe(true);
    expect(names.some((name) => name.includes('.layers.0.'))).toBe(false);
    expect(
      await maxAdapterDifference(join(single.runDir, 'fold_0', 'best_adapter'), adapter),
    ).toBeLessThan(1e-5);
  }, 900_000);
});
