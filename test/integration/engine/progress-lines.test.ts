// The real mentallam-train CLI with stderr on a pipe (no TTY, as in CI or nohup): between the fold
// and evaluation lines it prints progress lines with fold, step/total, loss, tokens/s and ETAs.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { packageRoot } from '../../../src/config/index.js';
import { smallRunOverrides } from './helpers.js';

const cli = join(packageRoot, 'dist', 'cli', 'mentallam-train.js');
let dir: string;
beforeAll(() => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  dir = mkdtempSync(join(tmpdir(), 'mentallam-progress-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('a non-TTY run prints a progress line every N steps', async () => {
  const args = smallRunOverrides(dir, 'run', [
    'training.folds=[0]',
    'training.max_steps=4',
    'training.micro_batch_size=4',
    'training.effective_batch_size=4',
    'logging.progress.mode=auto',
    'logging.progress.every_steps=2',
    'logging.progress.every_seconds=0',
  ]);
  const { stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
    cwd: dir,
    maxBuffer: 16 * 1024 * 1024,
  });
  const lines = stderr.split('\n');
  const progress = lines.filter((line) => /^fold 0 step \d+\/4 /.test(line));
  expect(progress).toEqual([
    expect.stringMatching(
      /^fold 0 step 2\/4 \(50%\) epoch 1 \| loss \d+\.\d{4} \| \d+ tok\/s \| ETA fold [\dhms]+, run [\dhms]+$/,
    ),
    expect.stringMatching(/^fold 0 step 4\/4 \(100%\) .* ETA fold 0s, run 0s$/),
  ]);
  // The bar's control characters never reach a pipe.
  expect(stderr.includes('\u001b[')).toBe(false);
  expect(lines.some((line) => /^fold 0: \d+ train/.test(line))).toBe(true);
  expect(lines.some((line) => /^fold 0 done in/.test(line))).toBe(true);
}, 300_000);
