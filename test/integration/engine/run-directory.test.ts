/**
 * One run per run directory: a new run creates its directory exclusively (a second run into the
 * same run_dir is refused, naming it; a clock-made name that is taken gets a suffix), a lock keeps
 * a second process out while a run or a resume goes on (a dead owner's lock does not), and a run
 * that fails during set-up leaves no directory behind, while a resume never deletes one.
 */
import { mkdtempSync, readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { InterruptedError } from '../../../src/tracking/index.js';
import { smallRunOverrides } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mentallam-run-dir-'));

function overrides(runName: string, extra: string[] = []): string[] {
  return smallRunOverrides(dir, runName, [
    'data.synthetic.n_posts=40',
    'training.max_steps=2',
    'training.folds=[0]',
    ...extra,
  ]);
}

describe('run directories', () => {
  test('the same run_dir twice: the second run is refused and the first keeps its files', async () => {
    const first = await trainFolds({ overrides: overrides('twice'), cwd: dir });
    const summary = readFileSync(first.summaryPath);
    await expect(trainFolds({ overrides: overrides('twice'), cwd: dir })).rejects.toThrow(
      new RegExp(
        `run_dir ${join(dir, 'twice')} already holds a run .*continue it with --resume .*or choose another run_dir`,
      ),
    );
    expect(readFileSync(first.summaryPath).equals(summary)).toBe(true);
  }, 600_000);

  test('two runs started at once in one run_dir: one runs, the other is refused', async () => {
    const results = await Promise.allSettled([
      trainFolds({ overrides: overrides('together'), cwd: dir }),
      trainFolds({ overrides: overrides('together'), cwd: dir }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect(String(refused.reason)).toMatch(/run_dir .*together (is in use|already holds a run)/);
  }, 600_000);

  test('a run_dir named by the clock that is taken gets a unique suffix', async () => {
    // ${now:%Y} stands for the default's seconds: two runs started in the same second collide.
    const clock = [`run_dir=${join(dir, 'clock')}/\${now:%Y}`];
    const runs = await Promise.all([
      trainFolds({ overrides: overrides('unused', clock), cwd: dir }),
      trainFolds({ overrides: overrides('unused', clock), cwd: dir }),
    ]);
    const year = String(new Date().getFullYear());
    expect(runs.map((run) => run.runDir).sort()).toEqual([
      join(dir, 'clock', year),
      join(dir, 'clock', `${year}_2`),
    ]);
    for (const run of runs) expect(existsSync(run.summaryPath)).toBe(true);
  }, 600_000);

  test('--resume while the run goes on is refused; a dead process lock is taken over', async () => {
    const abort = new AbortController();
    let refusal: unknown = null;
    const running = trainFolds({
      overrides: overrides('locked', ['training.max_steps=4']),
      cwd: dir,
      signal: abort.signal,
      onEvent: (event) => {
        if (event.type !== 'step' || event.step !== 1) return;
        trainFolds({ overrides: overrides('locked'), cwd: dir, resume: true })
          .catch((error: unknown) => {
            refusal = error;
          })
          .finally(() => abort.abort());
      },
    });
    await expect(running).rejects.toBeInstanceOf(InterruptedError);
    expect(String(refusal)).toMatch(
      new RegExp(
        `run_dir ${join(dir, 'locked')} is in use: .*run\\.lock is held by pid ${process.pid}`,
      ),
    );

    // A lock left by a process that was killed (its pid is gone) does not block the resume.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(
      join(dir, 'locked', 'run.lock'),
      JSON.stringify({
        pid: Number(dead.stdout.toString()),
        host: hostname(),
        startTime: null,
        since: new Date().toISOString(),
        purpose: 'training run',
      }),
    );
    const resumed = await trainFolds({ overrides: overrides('locked'), cwd: dir, resume: true });
    expect(resumed.folds).toHaveLength(1);
    expect(existsSync(join(dir, 'locked', 'run.lock'))).toBe(false);
  }, 600_000);

  test('a run that fails during set-up leaves no directory; a failed resume deletes nothing', async () => {
    const nested = `run_dir=${join(dir, 'outputs', 'day', 'time')}`;
    await expect(
      trainFolds({
        overrides: overrides('unused', [
          nested,
          'data.name=redsm5',
          `data.dir=${join(dir, 'none')}`,
        ]),
        cwd: dir,
      }),
    ).rejects.toThrow(/data\.dir .*none does not exist/);
    // Neither the run directory nor the folders made for it are left.
    expect(existsSync(join(dir, 'outputs'))).toBe(false);

    const finished = await trainFolds({ overrides: overrides('kept'), cwd: dir });
    const before = readdirSync(finished.runDir).sort();
    await expect(
      trainFolds({
        overrides: overrides('kept', ['data.name=redsm5', `data.dir=${join(dir, 'none')}`]),
        cwd: dir,
        resume: true,
      }),
    ).rejects.toThrow(/data\.dir .*none does not exist/);
    expect(readdirSync(finished.runDir).sort()).toEqual(before);
  }, 600_000);
});
