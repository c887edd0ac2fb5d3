// `mentallam infer` answers bad arguments before it loads a model: one line on stderr, exit 2,
// nothing left in the output folder. The loader here counts its calls, so a check that only runs
// after the (minutes-long, for a 7B model) load shows up as a load.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createProgram } from '../../../src/cli/program.js';
import type { ModelLoader } from '../../../src/infer/index.js';
import { captureIo, fakeLoader, makeAdapter, makeBaseDir, runProgram } from './fixtures.js';

let root: string;
let checkpoint: string;
let input: string;
let loads = 0;
const counting: ModelLoader = (spec) => {
  loads += 1;
  return fakeLoader()(spec);
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-infer-early-'));
  const baseDir = await makeBaseDir(join(root, 'base'));
  checkpoint = makeAdapter(join(root, 'adapter'), baseDir, 0.1);
  input = join(root, 'in.jsonl');
  writeFileSync(input, '{"post":"tired all day","criterion":"A6"}\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  loads = 0;
});

async function cli(args: string[]) {
  const captured = captureIo();
  const program = createProgram(captured.io, { loadModel: counting });
  const argv = ['infer', 'logging.mlflow.enabled=false', 'logging.level=error', ...args];
  const code = await runProgram(program, argv, captured.io.stderr);
  return { code, stderr: captured.err(), stdout: captured.out() };
}

/** A fresh folder for one case's output, to see what the command left there. */
function outDir(name: string): string {
  const dir = join(root, 'out', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('infer: errors that need no model come before the model loads', () => {
  test.each([
    ['an unknown --criterion', ['--post', 'x', '--criterion', 'A0'], /unknown criterion "A0"/],
    ['an empty --post', ['--post', '  '], /--post is empty/],
    [
      '--criterion with --input',
      ['--input', 'IN', '--output', 'OUT', '--criterion', 'A1'],
      /--criterion goes with --post/,
    ],
  ])('%s: exit 2, no model load', async (_name, args, message) => {
    const out = outDir(`usage-${loads}-${Math.random().toString(36).slice(2)}`);
    const { code, stderr } = await cli([
      '--checkpoint',
      checkpoint,
      ...args.map((a) => (a === 'IN' ? input : a === 'OUT' ? join(out, 'o.jsonl') : a)),
    ]);
    expect(stderr).toMatch(message);
    expect(code).toBe(2);
    expect(loads).toBe(0);
    expect(readdirSync(out)).toEqual([]);
  });

  test('a missing --input file: one line naming it, exit 2, nothing written', async () => {
    const out = outDir('missing-input');
    const missing = join(root, 'missing.jsonl');
    const { code, stderr } = await cli([
      '--checkpoint',
      checkpoint,
      '--input',
      missing,
      '--output',
      join(out, 'o.jsonl'),
    ]);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`--input ${missing}: no such file`)),
    ]);
    expect(code).toBe(2);
    expect(loads).toBe(0);
    expect(readdirSync(out)).toEqual([]);
  });

  test('a directory as --input is refused before the model loads', async () => {
    const out = outDir('dir-input');
    const { code, stderr } = await cli([
      '--checkpoint',
      checkpoint,
      '--input',
      root,
      '--output',
      join(out, 'o.jsonl'),
    ]);
    expect(stderr).toMatch(/--input .* is a directory/);
    expect(code).toBe(2);
    expect(loads).toBe(0);
    expect(readdirSync(out)).toEqual([]);
  });

  test('a missing --output folder: one line naming it, exit 2', async () => {
    const folder = join(root, 'no', 'such', 'folder');
    const { code, stderr } = await cli([
      '--checkpoint',
      checkpoint,
      '--input',
      input,
      '--output',
      join(folder, 'o.jsonl'),
    ]);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`--output .*: the folder ${folder} does not exist`)),
    ]);
    expect(code).toBe(2);
    expect(loads).toBe(0);
  });

  test('an --output folder that cannot be written to: exit 2, nothing left', async () => {
    // A regular file where the folder should be: not writable for any user, root included.
    const out = outDir('not-a-folder');
    writeFileSync(join(out, 'file'), 'x');
    const { code, stderr } = await cli([
      '--checkpoint',
      checkpoint,
      '--input',
      input,
      '--output',
      join(out, 'file', 'o.jsonl'),
    ]);
    expect(stderr).toMatch(/--output .*file\/o\.jsonl: .*not a folder/);
    expect(code).toBe(2);
    expect(loads).toBe(0);
    expect(readdirSync(out)).toEqual(['file']);
  });

  test('--output naming the --input file is refused (it would be overwritten)', async () => {
    const { code, stderr } = await cli([
      '--checkpoint',
      checkpoint,
      '--input',
      input,
      '--output',
      input,
    ]);
    expect(stderr).toMatch(/--output .* is the --input file/);
    expect(code).toBe(2);
    expect(loads).toBe(0);
  });

  test('a model that fails to load leaves no output and no part file', async () => {
    const out = outDir('load-fails');
    const captured = captureIo();
    const program = createProgram(captured.io, {
      loadModel: async () => {
        throw new Error('addon exploded');
      },
    });
    const code = await runProgram(
      program,
      [
        'infer',
        'logging.mlflow.enabled=false',
        'logging.level=error',
        '--checkpoint',
        checkpoint,
        '--input',
        input,
        '--output',
        join(out, 'o.jsonl'),
      ],
      captured.io.stderr,
    );
    expect(code).toBe(1);
    expect(captured.err()).toMatch(/addon exploded/);
    expect(readdirSync(out)).toEqual([]);
  });
});
