/**
 * Set-up problems a user meets first: each is one clear message naming the path or key, raised
 * before anything is trained; the new run's directory is removed again (nothing of it is worth
 * keeping), and nothing else is touched.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { trainFolds } from '../../../src/engine/index.js';
import { smallRunOverrides } from './helpers.js';

function overrides(dir: string, extra: string[]): string[] {
  return smallRunOverrides(dir, 'run', [
    'data.synthetic.n_posts=40',
    'training.max_steps=2',
    ...extra,
  ]);
}

describe('set-up errors', () => {
  test('a missing model directory names model.path and what belongs there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-setup-'));
    await expect(
      trainFolds({ overrides: overrides(dir, ['model.create_if_missing=false']), cwd: dir }),
    ).rejects.toThrow(
      /model\.path .*model holds no model: expected a Hugging Face Llama checkpoint/,
    );
    // The run had not started: no empty run directory is left behind.
    expect(existsSync(join(dir, 'run'))).toBe(false);
  });

  test('a tokenizer larger than the model vocabulary is refused, naming both sizes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-setup-'));
    // First run creates the tiny model; then shrink its vocabulary in config.json.
    await trainFolds({ overrides: overrides(dir, ['training.folds=[0]']), cwd: dir });
    const configPath = join(dir, 'model', 'config.json');
    const modelConfig = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...modelConfig, vocab_size: 300 }));
    await expect(
      trainFolds({ overrides: overrides(dir, ['run_dir=' + join(dir, 'run2')]), cwd: dir }),
    ).rejects.toThrow(
      /the tokenizer \(.*tokenizer\.json\) has \d+ tokens but config\.json's vocab_size is 300/,
    );
  }, 300_000);

  test('ReDSM5 data that is not there names data.dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-setup-'));
    await expect(
      trainFolds({
        overrides: overrides(dir, ['data.name=redsm5', `data.dir=${join(dir, 'nothing')}`]),
        cwd: dir,
      }),
    ).rejects.toThrow(/data\.dir .*nothing does not exist/);
  }, 300_000);
});
