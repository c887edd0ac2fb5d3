import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../../src/infra/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mentallam-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('writes text and bytes, replacing an existing file', async () => {
  const path = join(dir, 'a.txt');
  await writeFileAtomic(path, 'first');
  await writeFileAtomic(path, new Uint8Array([104, 105]));
  expect(await readFile(path, 'utf8')).toBe('hi');
  expect(await readdir(dir)).toEqual(['a.txt']);
});

test('writeJsonAtomic writes indented JSON with a final newline', async () => {
  const path = join(dir, 'm.json');
  await writeJsonAtomic(path, { f1: 0.5, folds: [0, 1] });
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('}\n')).toBe(true);
  expect(JSON.parse(text)).toEqual({ f1: 0.5, folds: [0, 1] });
});

test('writeJsonAtomic refuses a value JSON cannot represent, leaving no file', async () => {
  await expect(writeJsonAtomic(join(dir, 'u.json'), undefined)).rejects.toThrow(/u\.json/);
  expect(await readdir(dir)).toEqual([]);
});

test('a failed rename leaves the target untouched and no temp file behind', async () => {
  // Renaming a file over a non-empty directory fails after the data has been written.
  const target = join(dir, 'target');
  await mkdir(target);
  await writeFile(join(target, 'keep'), 'old');
  await expect(writeFileAtomic(target, 'new content')).rejects.toMatchObject({
    code: expect.stringMatching(/EISDIR|ENOTEMPTY|EEXIST/),
  });
  expect((await readdir(dir)).sort()).toEqual(['target']);
  expect(await readFile(join(target, 'keep'), 'utf8')).toBe('old');
});

test('a missing directory is an error, not a partial file', async () => {
  const path = join(dir, 'missing', 'x.json');
  await expect(writeFileAtomic(path, 'x')).rejects.toMatchObject({ code: 'ENOENT' });
  expect(await readdir(dir)).toEqual([]);
});
