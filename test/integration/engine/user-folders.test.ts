/**
 * Generated data and models go only into a folder that does not exist, is empty, or carries the
 * project's own marker: a user's folder given as data.dir or model.path is never written over.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { runCli } from '../../../src/cli/index.js';
import { loadConfig } from '../../../src/config/index.js';
import { loadDataset, modelDirectory, trainFolds } from '../../../src/engine/index.js';
import { createLogger } from '../../../src/infra/index.js';
import { smallRunOverrides } from './helpers.js';

const logger = createLogger({ level: 'error' });
const dir = mkdtempSync(join(tmpdir(), 'mentallam-user-folders-'));

function overrides(run: string, extra: string[]): string[] {
  return smallRunOverrides(dir, run, [
    'data.synthetic.n_posts=40',
    'training.max_steps=1',
    'training.folds=[0]',
    ...extra,
  ]);
}

async function config(extra: string[]) {
  return (await loadConfig({ overrides: overrides('unused', extra), env: {} })).config;
}

beforeAll(async () => {
  // The tiny model every run here uses, generated once into a new folder.
  await modelDirectory(await config([]), dir, logger);
}, 300_000);

describe('user folders are not overwritten', () => {
  test("data.dir holding the user's CSVs with data=synthetic: an error naming both settings", async () => {
    const userData = join(dir, 'my-redsm5');
    mkdirSync(userData);
    writeFileSync(join(userData, 'redsm5_posts.csv'), 'post_id,text\nmine,my own post\n');
    await expect(
      trainFolds({ overrides: overrides('run-data', [`data.dir=${userData}`]), cwd: dir }),
    ).rejects.toThrow(
      new RegExp(
        `data\\.dir ${userData} holds files mentallam did not generate \\(redsm5_posts\\.csv; no synthetic\\.json\\).*` +
          'data=redsm5.*a new or empty folder',
      ),
    );
    expect(readFileSync(join(userData, 'redsm5_posts.csv'), 'utf8')).toBe(
      'post_id,text\nmine,my own post\n',
    );
    expect(readdirSync(userData)).toEqual(['redsm5_posts.csv']);
  }, 300_000);

  test('model.path at an existing folder without config.json: an error, its files untouched', async () => {
    const userModel = join(dir, 'my-model');
    mkdirSync(userModel);
    writeFileSync(join(userModel, 'tokenizer.json'), '{"mine": true}');
    await expect(
      trainFolds({ overrides: overrides('run-model', [`model.path=${userModel}`]), cwd: dir }),
    ).rejects.toThrow(
      new RegExp(
        `model\\.path ${userModel} has no config\\.json or \\.gguf and holds files mentallam did not generate ` +
          '\\(tokenizer\\.json; no mentallam-generated\\.json\\).*a new or empty folder',
      ),
    );
    expect(readFileSync(join(userModel, 'tokenizer.json'), 'utf8')).toBe('{"mine": true}');
    expect(readdirSync(userModel)).toEqual(['tokenizer.json']);
  }, 300_000);

  test('an empty folder and a folder with the marker are generated into', async () => {
    const empty = join(dir, 'empty-model');
    mkdirSync(empty);
    await modelDirectory(await config([`model.path=${empty}`]), dir, logger);
    expect(existsSync(join(empty, 'config.json'))).toBe(true);
    expect(existsSync(join(empty, 'mentallam-generated.json'))).toBe(true);

    // A generation that died half-way (marker and tokenizer, no config.json) is redone.
    const partial = join(dir, 'partial-model');
    mkdirSync(partial);
    writeFileSync(
      join(partial, 'mentallam-generated.json'),
      readFileSync(join(empty, 'mentallam-generated.json')),
    );
    writeFileSync(join(partial, 'tokenizer.json'), 'torn');
    await modelDirectory(await config([`model.path=${partial}`]), dir, logger);
    expect(readFileSync(join(partial, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(empty, 'tokenizer.json'), 'utf8'),
    );

    const emptyData = join(dir, 'empty-data');
    mkdirSync(emptyData);
    const dataset = await loadDataset(await config([`data.dir=${emptyData}`]), dir, logger);
    expect(dataset.posts).toHaveLength(40);
    // Its own marker lets a later run with another seed regenerate it.
    await loadDataset(
      await config([`data.dir=${emptyData}`, 'data.synthetic.seed=8']),
      dir,
      logger,
    );
    expect(JSON.parse(readFileSync(join(emptyData, 'synthetic.json'), 'utf8'))).toEqual({
      seed: 8,
      nPosts: 40,
    });
  }, 300_000);

  test('the data and model tools refuse a folder of the user too', async () => {
    const user = join(dir, 'my-files');
    mkdirSync(user);
    writeFileSync(join(user, 'config.json'), '{"mine": true}');
    writeFileSync(join(user, 'redsm5_posts.csv'), 'mine');
    let err = '';
    const io = {
      stdout: { write: () => true } as unknown as NodeJS.WritableStream,
      stderr: { write: (text: string) => (err += text) } as unknown as NodeJS.WritableStream,
    };
    expect(await runCli(['data', 'synth', '--out', user, '--posts', '20'], io)).toBe(1);
    expect(err).toMatch(/data\.dir .*my-files holds files mentallam did not generate/);
    expect(await runCli(['model', 'init-tiny', `model.path=${user}`], io)).toBe(1);
    expect(err).toMatch(/model\.path .*my-files holds files mentallam did not generate/);
    expect(readdirSync(user).sort()).toEqual(['config.json', 'redsm5_posts.csv']);
    expect(readFileSync(join(user, 'config.json'), 'utf8')).toBe('{"mine": true}');
  });
});
