// Bad arguments as a shell user meets them, through the built CLI in a child process: one line on
// stderr (no Node stack trace), exit 2, nothing left behind, and no MLflow server started for an
// answer that needs none.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { runCliProcess } from '../cliProcess.js';

const dir = mkdtempSync(join(tmpdir(), 'mentallam-cli-errors-'));
// No tracking URI: a command that wanted MLflow would start a local server under <cwd>/mlruns.
const env = { MLFLOW_TRACKING_URI: '', MENTALLAM_LOG_LEVEL: 'error' };

beforeAll(() => {
  mkdirSync(join(dir, 'adapter'));
  writeFileSync(join(dir, 'adapter', 'adapter_config.json'), '{}');
  writeFileSync(join(dir, 'in.jsonl'), '{"post":"tired","criterion":"A6"}\n');
});

describe('the CLI on bad arguments', () => {
  test('infer with a missing --input file: one line, exit 2, no part file', async () => {
    const result = await runCliProcess(
      ['infer', '--checkpoint', 'adapter', '--input', 'missing.jsonl', '--output', 'o.jsonl'],
      { cwd: dir, env },
    );
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^mentallam infer: --input .*missing\.jsonl: no such file/),
    ]);
    expect(result.code).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['adapter', 'in.jsonl']);
  });

  test('infer into a missing --output folder: one line, exit 2, nothing written', async () => {
    const result = await runCliProcess(
      ['infer', '--checkpoint', 'adapter', '--input', 'in.jsonl', '--output', 'nodir/o.jsonl'],
      { cwd: dir, env },
    );
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^mentallam infer: --output .*nodir\/o\.jsonl: the folder .* does not exist/,
      ),
    ]);
    expect(result.code).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['adapter', 'in.jsonl']);
  });

  test('aggregate --run <a path that is not a run> answers without starting MLflow', async () => {
    for (const ref of ['./not-a-run/here', 'adapter', 'in.jsonl']) {
      const result = await runCliProcess(['aggregate', '--run', ref], { cwd: dir, env });
      expect(result.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^mentallam aggregate: --run .*(does not exist|not a run directory)/),
      ]);
      expect(result.code).toBe(2);
    }
    // A local server would have made <cwd>/mlruns for its database and lock.
    expect(existsSync(join(dir, 'mlruns'))).toBe(false);
  }, 60_000);
});
