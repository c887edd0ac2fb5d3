import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createProgram } from '../../../src/cli/program.js';
import { formatPredictionTable } from '../../../src/cli/infer.js';
import type { ModelLoader } from '../../../src/infer/index.js';
import {
  captureIo,
  fakeLoader,
  makeAdapter,
  makeBaseDir,
  runProgram,
  thresholdsFile,
} from './fixtures.js';

let root: string;
let baseDir: string;
let checkpoint: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-infer-cli-'));
  baseDir = await makeBaseDir(join(root, 'base'));
  checkpoint = makeAdapter(join(root, 'fold_0', 'best_adapter'), baseDir, 0.2);
  writeFileSync(join(root, 'fold_0', 'thresholds.json'), thresholdsFile(0.5, { A1: 0.35 }));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const common = ['logging.mlflow.enabled=false', 'logging.level=error'];

async function cli(
  argv: string[],
  options: { stdin?: string; loadModel?: ModelLoader; now?: () => number } = {},
) {
  const captured = captureIo();
  const program = createProgram(captured.io, {
    loadModel: options.loadModel ?? fakeLoader(),
    ...(options.now ? { now: options.now } : {}),
  });
  if (options.stdin !== undefined) captured.io.stdin.end(options.stdin);
  const code = await runProgram(program, argv, captured.io.stderr);
  return { code, stdout: captured.out(), stderr: captured.err() };
}

describe('mentallam infer', () => {
  test('single pair: a table row with probability, threshold and label', async () => {
    const { code, stdout, stderr } = await cli([
      'infer',
      ...common,
      '--checkpoint',
      checkpoint,
      '--post',
      'I feel so down',
      '--criterion',
      'depressed_mood',
    ]);
    expect(stderr).toMatch(/scored 1 pairs from 1 records/);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^criterion\s+symptom\s+probability\s+threshold\s+label$/);
    expect(lines[1]).toMatch(/^A1\s+DEPRESSED_MOOD\s+0\.\d{4}\s+0\.3500\s+(yes|no)$/);
    expect(lines).toHaveLength(2);
  });

  test('post alone: nine rows; --json prints records; --threshold marks overrides', async () => {
    const table = await cli([
      'infer',
      ...common,
      '--checkpoint',
      checkpoint,
      '--post',
      'no energy',
      '--threshold',
      '0.9',
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout.trim().split('\n')).toHaveLength(10);
    expect(table.stdout).toMatch(/0\.9000\*/);
    const json = await cli([
      'infer',
      ...common,
      '--checkpoint',
      checkpoint,
      '--post',
      'no energy',
      '--json',
    ]);
    const records = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r: { criterion: string }) => r.criterion)).toEqual([
      'A1',
      'A2',
      'A3',
      'A4',
      'A5',
      'A6',
      'A7',
      'A8',
      'A9',
    ]);
    expect(records[0]).toEqual({
      criterion: 'A1',
      symptom: 'DEPRESSED_MOOD',
      probability: expect.any(Number),
      threshold: 0.35,
      thresholdOrigin: 'per_criterion',
      label: expect.stringMatching(/^(yes|no)$/),
    });
  });

  test('batch file with bad lines: error records, exit 1, the output complete', async () => {
    const input = join(root, 'pairs.jsonl');
    const output = join(root, 'preds.jsonl');
    writeFileSync(
      input,
      [
        '{"id":"a","post":"I cannot sleep","criterion":"A4"}',
        'not json',
        '{"id":"c","post":""}',
        '{"id":"d","post":"tired all day","criterion":"A6"}',
      ].join('\n') + '\n',
    );
    const { code, stderr } = await cli([
      'infer',
      ...common,
      '--checkpoint',
      checkpoint,
      '--input',
      input,
      '--output',
      output,
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/2 of 4 records failed/);
    const records = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(
      records.map((r: { line: number; criterion?: string; error?: string }) => [
        r.line,
        r.criterion ?? r.error,
      ]),
    ).toEqual([
      [1, 'A4'],
      [2, expect.stringMatching(/^invalid JSON/)],
      [3, '"post" is empty'],
      [4, 'A6'],
    ]);
    expect(stderr).not.toContain('cannot sleep');
  });

  test('all lines good: exit 0; - reads stdin and writes stdout', async () => {
    const { code, stdout } = await cli(
      ['infer', ...common, '--checkpoint', checkpoint, '--input', '-', '--output', '-'],
      {
        stdin: '{"post":"sad","criterion":"A1"}\n{"post":"sad","criterion":"A2"}\n',
      },
    );
    expect(code).toBe(0);
    expect(
      stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).criterion),
    ).toEqual(['A1', 'A2']);
  });

  test('a failed run leaves no output file behind', async () => {
    const output = join(root, 'never.jsonl');
    const broken: ModelLoader = async () => {
      throw new Error('addon exploded');
    };
    const { code, stderr } = await cli(
      [
        'infer',
        ...common,
        '--checkpoint',
        checkpoint,
        '--input',
        join(root, 'pairs.jsonl'),
        '--output',
        output,
      ],
      {
        loadModel: broken,
      },
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/addon exploded/);
    expect(existsSync(output)).toBe(false);
  });

  test.each([
    [['--post', 'x'], /name the model/],
    [['--checkpoint', 'CKPT'], /nothing to score/],
    [['--checkpoint', 'CKPT', '--post', 'x', '--criterion', 'A0'], /unknown criterion/],
    [['--checkpoint', 'CKPT', '--post', 'x', '--threshold', 'high'], /--threshold/],
    [['--checkpoint', 'CKPT', '--input', 'a.jsonl'], /--input needs --output/],
    [['--checkpoint', '/nonexistent', '--post', 'x'], /no adapter_config/],
    [['--model', 'champion', '--post', 'x'], /models:\//],
  ])('usage error %j -> exit 2', async (args, message) => {
    const { code, stderr } = await cli([
      'infer',
      ...common,
      ...args.map((a) => (a === 'CKPT' ? checkpoint : a)),
    ]);
    expect(stderr).toMatch(message);
    expect(code).toBe(2);
  });

  test('table formatting', () => {
    expect(
      formatPredictionTable([
        {
          criterion: 'A9',
          symptom: 'SUICIDAL_THOUGHTS',
          probability: 0.5,
          threshold: 0.25,
          thresholdOrigin: 'global',
          label: 'yes',
        },
      ]),
    ).toBe(
      'criterion  symptom            probability  threshold  label\nA9         SUICIDAL_THOUGHTS  0.5000       0.2500     yes\n',
    );
  });
});

describe('mentallam bench', () => {
  const clock = (ms: number) => {
    let t = 0;
    let reads = 0;
    return () => {
      const v = t;
      if (reads++ % 2 === 0) t += ms;
      return v;
    };
  };
  const args = (out: string) => [
    'bench',
    ...common,
    '--base',
    baseDir,
    '--lengths',
    '32,64',
    '--runs',
    '4',
    '--warmup',
    '1',
    '--out',
    join(root, out),
  ];

  test('prints per-length figures and a histogram; exit 0 under the limit', async () => {
    const { code, stdout } = await cli(args('fast'), { now: clock(20) });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^32 tokens, 4 runs: p50 20\.0 ms {2}p95 20\.0 ms/m);
    expect(stdout).toMatch(/gate: p95 at 64 tokens = 20\.0 ms, limit 1000 ms: passed/);
    expect(existsSync(join(root, 'fast', 'latency_histogram.svg'))).toBe(true);
  });

  test('p95 over bench.max_p95_ms: exit 1; with allow_slow.reason: exit 0', async () => {
    const slow = await cli(args('slow'), { now: clock(1500) });
    expect(slow.code).toBe(1);
    expect(slow.stdout).toMatch(/FAILED/);
    expect(slow.stderr).toMatch(/bench gate failed: p95 1500\.0 ms > bench\.max_p95_ms 1000 ms/);
    const allowed = await cli(
      [...args('allowed'), 'bench.allow_slow.reason="7B on a laptop CPU"'],
      { now: clock(1500) },
    );
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/allowed \(bench\.allow_slow\.reason: 7B on a laptop CPU\)/);
  });

  test('bad lengths are a usage error', async () => {
    const { code } = await cli(['bench', ...common, '--base', baseDir, '--lengths', '0,64']);
    expect(code).toBe(2);
  });
});
