/**
 * Claiming a run directory: exclusive for a new run (a suffix only when asked), locked for a
 * resume, and a discarded new run leaves nothing, not even the parent folders made for it.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadConfig } from '../../../src/config/index.js';
import { claimNewRun, claimRunForResume, RunDirectoryError } from '../../../src/run/index.js';

const root = mkdtempSync(join(tmpdir(), 'mentallam-claim-'));

describe('claiming a run directory', () => {
  test('a new run holds its directory: a second claim is refused, naming the directory', async () => {
    const dir = join(root, 'a');
    const claim = await claimNewRun(dir);
    expect(readdirSync(dir)).toEqual(['run.lock']);
    await expect(claimNewRun(dir)).rejects.toThrow(
      new RegExp(`run_dir ${dir} is in use: .*run\\.lock is held by pid ${process.pid}`),
    );
    await expect(claimRunForResume(dir)).rejects.toBeInstanceOf(RunDirectoryError);
    writeFileSync(join(dir, 'config.yaml'), 'seed: 1\n');
    await claim.release();
    expect(readdirSync(dir)).toEqual(['config.yaml']);
    await expect(claimNewRun(dir)).rejects.toThrow(
      `run_dir ${dir} already holds a run (config.yaml): continue it with --resume ${dir}, or choose another run_dir`,
    );
    const resumed = await claimRunForResume(dir);
    await resumed.discard();
    // A resume's discard only lets go: the run's files stay.
    expect(readdirSync(dir)).toEqual(['config.yaml']);
  });

  test('a name made by the clock takes the next free suffix', async () => {
    const dir = join(root, 'clock');
    const first = await claimNewRun(dir, { suffixIfTaken: true });
    const second = await claimNewRun(dir, { suffixIfTaken: true });
    mkdirSync(`${dir}_3`);
    writeFileSync(join(`${dir}_3`, 'summary.json'), '{}');
    const fourth = await claimNewRun(dir, { suffixIfTaken: true });
    expect([first, second, fourth].map((c) => [c.store.dir, c.suffix])).toEqual([
      [dir, ''],
      [`${dir}_2`, '_2'],
      [`${dir}_4`, '_4'],
    ]);
    for (const claim of [first, second, fourth]) await claim.release();
  });

  test('an empty existing folder is used; discarding empties it but keeps it', async () => {
    const dir = join(root, 'made-by-user');
    mkdirSync(dir);
    const claim = await claimNewRun(dir);
    writeFileSync(join(dir, 'config.yaml'), 'seed: 1\n');
    mkdirSync(join(dir, 'folds'));
    await claim.discard();
    expect(readdirSync(dir)).toEqual([]);
  });

  test('discarding a new run removes it and the parent folders made for it', async () => {
    const base = join(root, 'outputs');
    mkdirSync(base);
    writeFileSync(join(base, 'keep.txt'), 'x');
    const claim = await claimNewRun(join(base, '2026-01-01', '10-00-00'));
    writeFileSync(join(claim.store.dir, 'config.yaml'), 'seed: 1\n');
    await claim.discard();
    expect(readdirSync(base)).toEqual(['keep.txt']);
  });

  test('a file in the way, and a resume of nothing, are clear errors', async () => {
    const file = join(root, 'file');
    writeFileSync(file, 'x');
    await expect(claimNewRun(file)).rejects.toThrow(/run_dir .*file is a file, not a folder/);
    await expect(claimRunForResume(join(root, 'nothing'))).rejects.toThrow(
      /--resume .*nothing: no such run directory/,
    );
    expect(existsSync(join(root, 'nothing'))).toBe(false);
  });

  test('loadConfig names the keys made by the clock: run_dir by default, none when it is given', async () => {
    expect((await loadConfig({ env: {} })).clockKeys).toEqual(['run_dir']);
    expect((await loadConfig({ env: {}, overrides: ['run_dir=outputs/mine'] })).clockKeys).toEqual(
      [],
    );
  });
});
