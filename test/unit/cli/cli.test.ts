import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { load } from 'js-yaml';
import {
  exitCodes,
  runCli,
  type TrainCommandArgs,
  type TrainRunner,
} from '../../../src/cli/index.js';

function io() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  return {
    io: { stdout, stderr, env: {} as NodeJS.ProcessEnv },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function run(argv: string[], train?: TrainRunner) {
  const streams = io();
  const code = await runCli(argv, streams.io, { train });
  return { code, stdout: streams.out(), stderr: streams.err() };
}

describe('mentallam config', () => {
  test('prints the resolved YAML with bare and --override overrides', async () => {
    const { code, stdout, stderr } = await run([
      'config',
      'seed=7',
      '--override',
      'training.lr=3e-5',
      '-o',
      'data=redsm5',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const config = load(stdout) as {
      seed: number;
      training: { lr: number };
      data: { name: string };
    };
    expect(config.seed).toBe(7);
    expect(config.training.lr).toBeCloseTo(3e-5, 15);
    expect(config.data.name).toBe('redsm5');
    expect(stdout).toMatch(/^ {2}lr: 0\.00003$/m);
  });

  test('--flat prints the MLflow params', async () => {
    const { code, stdout } = await run(['config', '--flat']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^training\.micro_batch_size=16$/m);
    expect(stdout).toMatch(/^model\.path=\S*models\/smollm2$/m);
  });
});

describe('mentallam train', () => {
  test('--cfg prints the config and exits 0 without training', async () => {
    const train = async () => {
      throw new Error('must not run');
    };
    const { code, stdout } = await run(['train', '--cfg', '--override', 'training.lr=3e-5'], train);
    expect(code).toBe(0);
    expect((load(stdout) as { training: { lr: number } }).training.lr).toBeCloseTo(3e-5, 15);
  });

  test('training.lr=abc exits 2 naming the key and the expected type', async () => {
    const { code, stdout, stderr } = await run(['train', '--cfg', '--override', 'training.lr=abc']);
    expect(code).toBe(exitCodes.usage);
    expect(stdout).toBe('');
    expect(stderr).toContain('training.lr: got "abc", expected number');
  });

  test('training.nope=1 exits 2 naming the unknown key', async () => {
    const { code, stderr } = await run(['train', '--cfg', 'training.nope=1']);
    expect(code).toBe(2);
    expect(stderr).toContain('training.nope: got 1, expected a known key of training');
  });

  test('all problems are listed together', async () => {
    const { code, stderr } = await run([
      'train',
      '--cfg',
      'training.lr=abc',
      'training.nope=1',
      'model.dtype=fp8',
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/3 problems/);
    for (const key of ['training.lr', 'training.nope', 'model.dtype'])
      expect(stderr).toContain(`  - ${key}:`);
  });

  test('the runner gets the frozen config, the overrides in order and the choices', async () => {
    let received: TrainCommandArgs | undefined;
    const { code } = await run(['train', 'seed=3', '-o', 'training.max_epochs=2'], async (args) => {
      received = args;
      return 0;
    });
    expect(code).toBe(0);
    expect(received!.config.seed).toBe(3);
    expect(received!.config.training.max_epochs).toBe(2);
    expect(received!.overrides).toEqual(['seed=3', 'training.max_epochs=2']);
    expect(received!.choices.model).toBe('smollm2');
    expect(received!.resume).toBeUndefined();
  });

  test("the runner's exit code and errors become the process exit code", async () => {
    expect((await run(['train'], async () => 130)).code).toBe(130);
    const failed = await run(['train'], async () => {
      throw new Error('addon exploded');
    });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('mentallam: addon exploded');
  });

  test('without a runner, train says so and exits 1', async () => {
    const { code, stderr } = await run(['train']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/training is not available/);
  });

  describe('--resume', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'mentallam-resume-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    test("re-applies the run's overrides, then the new ones, and points run_dir at it", async () => {
      writeFileSync(join(dir, 'overrides.yaml'), '- seed=5\n- training.max_epochs=2\n');
      let received: TrainCommandArgs | undefined;
      const { code } = await run(
        ['train', '--resume', dir, 'training.max_epochs=4'],
        async (args) => {
          received = args;
          return 0;
        },
      );
      expect(code).toBe(0);
      expect(received!.resume).toBe(dir);
      expect(received!.config.seed).toBe(5);
      expect(received!.config.training.max_epochs).toBe(4);
      expect(received!.config.run_dir).toBe(dir);
    });

    test('a directory without overrides.yaml is a usage error', async () => {
      const { code, stderr } = await run(['train', '--resume', dir], async () => 0);
      expect(code).toBe(2);
      expect(stderr).toContain('--resume');
      expect(stderr).toContain('overrides.yaml');
    });
  });
});

describe('usage', () => {
  test('--help exits 0 and lists the commands', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/config \[options\] \[overrides\.\.\.\]/);
    expect(stdout).toMatch(/train \[options\] \[overrides\.\.\.\]/);
  });

  test('train --help shows --cfg and --resume', async () => {
    const { code, stdout } = await run(['train', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--cfg');
    expect(stdout).toContain('--resume <run_dir>');
  });

  test('an unknown option or command exits 2', async () => {
    const option = await run(['train', '--nope']);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/unknown option '--nope'/);
    expect((await run(['fly'])).code).toBe(2);
  });

  test('--version prints the package version', async () => {
    const { code, stdout } = await run(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
