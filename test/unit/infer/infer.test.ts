import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';

import type { Config } from '../../../src/config/index.js';
import { loadCriteria, loadTokenizer } from '../../../src/data/index.js';
import { encodePost, sharesPrefix } from '../../../src/engine/index.js';
import {
  encodePair,
  infer,
  InferUsageError,
  ModelResolutionError,
  type Prediction,
} from '../../../src/infer/index.js';
import {
  aggregateFile,
  fakeLoader,
  fakeScore,
  makeAdapter,
  makeBaseDir,
  makeRunDir,
  newLog,
  testConfig,
  thresholdsFile,
} from './fixtures.js';
import { writeFileSync } from 'node:fs';

let root: string;
let baseDir: string;
let config: Config;
let checkpoint: string;
let runDir: string;
const criteria = loadCriteria('data/dsm5/criteria.json');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-infer-'));
  baseDir = await makeBaseDir(join(root, 'base'));
  config = await testConfig(['inference.batch_size=4']);
  checkpoint = makeAdapter(join(root, 'ckpt', 'best_adapter'), baseDir, 0.25);
  writeFileSync(join(root, 'ckpt', 'thresholds.json'), thresholdsFile(0.45, { A4: 0.3 }));
  runDir = makeRunDir(join(root, 'run'), baseDir, config, [
    { offset: -0.5, threshold: 0.4, validation: 0.5 },
    { offset: 0.1, threshold: 0.5, validation: 0.7 },
    { offset: 0.9, threshold: 0.6, validation: 0.6 },
  ]);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * What the fake model must return for a pair: the scorer applied to training's encoding (with a
 * shared-prefix prompt, the post encoded against all nine criteria: one budget per post).
 */
async function expected(post: string, criterionId: string, offset: number): Promise<number> {
  const tokenizer = loadTokenizer(baseDir, { paddingSide: 'right' });
  const criterion = criteria.find((c) => c.id === criterionId)!;
  const ids = sharesPrefix(config.data.prompt)
    ? (await encodePost(tokenizer, config.data.prompt, post, criteria)).ids[
        criteria.indexOf(criterion)
      ]!
    : await encodePair(tokenizer, config.data.prompt, post, criterion);
  return Math.fround(fakeScore(ids, offset));
}

async function stream(
  lines: string[],
  options: { chunkSize?: number; run?: string; ensemble?: boolean } = {},
) {
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (c: Buffer) => chunks.push(c.toString()));
  const result = await infer({
    config,
    ...(options.run ? { run: options.run } : { checkpoint }),
    ...(options.ensemble ? { ensemble: true } : {}),
    input: Readable.from([lines.join('\n')]),
    output,
    chunkSize: options.chunkSize ?? 256,
    loadModel: fakeLoader(),
  });
  const records = chunks
    .join('')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Prediction & { error?: string });
  return { result, records };
}

describe('infer()', () => {
  test('one pair: probability, per-criterion threshold, label; adapter merged once', async () => {
    const log = newLog();
    const result = await infer({
      config,
      checkpoint,
      post: 'I cannot sleep at night',
      criterion: 'sleep_issues',
      loadModel: fakeLoader(log),
    });
    expect(result.predictions).toHaveLength(1);
    const [p] = result.predictions;
    expect(p).toMatchObject({
      criterion: 'A4',
      symptom: 'SLEEP_ISSUES',
      threshold: 0.3,
      thresholdOrigin: 'per_criterion',
    });
    expect(p!.probability).toBe(await expected('I cannot sleep at night', 'A4', 0.25));
    expect(p!.label).toBe(p!.probability >= 0.3 ? 'yes' : 'no');
    expect(log.loads).toHaveLength(1);
    expect(log.loads[0]).toMatchObject({
      modelDir: baseDir,
      dora: { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] },
    });
    expect(log.adapters).toEqual([checkpoint]);
    expect(log.merges).toBe(1);
    expect(log.disposed).toBe(1);
    expect(result.model).toMatchObject({ kind: 'checkpoint', folds: [null], ensemble: false });
  });

  test('a post alone: all nine criteria in one shared-prefix row, global threshold where none is specific', async () => {
    const log = newLog();
    const result = await infer({
      config,
      checkpoint,
      post: 'Nothing is fun anymore',
      loadModel: fakeLoader(log),
    });
    // One model call, one row: the post's part of the prompt once, nine criterion segments.
    expect(log.batches).toEqual([{ batchSize: 1, seqLen: expect.any(Number), segments: 9 }]);
    expect(result.predictions.map((p) => p.criterion)).toEqual(criteria.map((c) => c.id));
    expect(result.predictions.filter((p) => p.thresholdOrigin === 'global')).toHaveLength(8);
    for (const p of result.predictions)
      expect(p.probability).toBe(await expected('Nothing is fun anymore', p.criterion, 0.25));
    expect(result.counts).toEqual({
      records: 1,
      pairs: 9,
      failed: 0,
      positives: result.predictions.filter((p) => p.label === 'yes').length,
    });
  });

  test('a template without the post first: a post alone is scored as nine plain rows', async () => {
    const criterionFirst = await testConfig([
      'inference.batch_size=4',
      'data.prompt.template="criterion: {criterion}, post: {post} Does the post match? yes or no"',
    ]);
    expect(sharesPrefix(criterionFirst.data.prompt)).toBe(false);
    const log = newLog();
    const post = 'Nothing is fun anymore';
    const result = await infer({
      config: criterionFirst,
      checkpoint,
      post,
      loadModel: fakeLoader(log),
    });
    // Plain batches of inference.batch_size pairs, no segments.
    expect(log.batches.map((b) => [b.batchSize, b.segments])).toEqual([
      [4, undefined],
      [4, undefined],
      [1, undefined],
    ]);
    const tokenizer = loadTokenizer(baseDir, { paddingSide: 'right' });
    for (const p of result.predictions) {
      const criterion = criteria.find((c) => c.id === p.criterion)!;
      const ids = await encodePair(tokenizer, criterionFirst.data.prompt, post, criterion);
      expect(p.probability).toBe(Math.fround(fakeScore(ids, 0.25)));
    }
  });

  test('--threshold overrides every threshold', async () => {
    const result = await infer({
      config,
      checkpoint,
      post: 'x y',
      threshold: 0,
      loadModel: fakeLoader(),
    });
    expect(result.predictions.every((p) => p.threshold === 0 && p.label === 'yes')).toBe(true);
  });

  test('batch JSONL: predictions in line order, error records for bad lines, the rest goes on', async () => {
    const lines = [
      '{"id":"a","post":"I feel worthless","criterion":"A7"}',
      '{"id":"b","post":"tired"', // invalid JSON
      '{"id":"c","post":"I cannot sleep"}',
      '',
      '{"id":"d","criterion":"A1"}', // missing post
      '{"id":"e","post":"   ","criterion":"A1"}', // empty
      '{"id":"f","post":"so tired","criterion":"A99"}', // unknown criterion
      '{"post":"no energy at all","criterion":"fatigue"}',
    ];
    const { result, records } = await stream(lines, { chunkSize: 3 });
    expect(records.map((r) => [r.line, r.criterion ?? 'error'])).toEqual([
      [1, 'A7'],
      [2, 'error'],
      ...criteria.map((c) => [3, c.id]),
      [5, 'error'],
      [6, 'error'],
      [7, 'error'],
      [8, 'A6'],
    ]);
    expect(records.find((r) => r.line === 5)).toEqual({
      line: 5,
      id: 'd',
      error: 'missing "post"',
    });
    expect(records.find((r) => r.line === 1)!.probability).toBe(
      await expected('I feel worthless', 'A7', 0.25),
    );
    expect(result.counts).toMatchObject({ records: 7, pairs: 11, failed: 4 });
    expect(result.predictions).toEqual([]);
  });

  test('chunk size and batch size do not change any probability', async () => {
    const lines = corpusLines(20);
    const a = await stream(lines, { chunkSize: 1 });
    const b = await stream(lines, { chunkSize: 256 });
    expect(a.records).toEqual(b.records);
  });

  test('the list form returns predictions and errors', async () => {
    const result = await infer({
      config,
      checkpoint,
      inputs: [
        { id: 1, post: 'tired', criterion: 'A6' },
        { post: '' } as never,
        { id: 3, post: 'sad', criterion: 'A1' },
      ],
      loadModel: fakeLoader(),
    });
    expect(result.predictions.map((p) => [p.line, p.id, p.criterion])).toEqual([
      [1, 1, 'A6'],
      [3, 3, 'A1'],
    ]);
    expect(result.errors).toEqual([{ line: 2, error: '"post" is empty' }]);
  });

  test('run directory: best fold on inner validation with its thresholds; /fold picks one', async () => {
    const best = await infer({
      config,
      run: runDir,
      post: 'so tired',
      criterion: 'A6',
      loadModel: fakeLoader(),
    });
    expect(best.model.folds).toEqual([1]);
    expect(best.predictions[0]!.threshold).toBe(0.5);
    expect(best.predictions[0]!.probability).toBe(await expected('so tired', 'A6', 0.1));
    const fold2 = await infer({
      config,
      run: `${runDir}/2`,
      post: 'so tired',
      criterion: 'A6',
      loadModel: fakeLoader(),
    });
    expect(fold2.model.folds).toEqual([2]);
    expect(fold2.predictions[0]!.threshold).toBe(0.6);
    writeFileSync(join(runDir, 'aggregate.json'), aggregateFile(2));
    const aggregated = await infer({
      config,
      run: runDir,
      post: 'x',
      criterion: 'A6',
      loadModel: fakeLoader(),
    });
    expect(aggregated.model.folds).toEqual([2]);
    rmSync(join(runDir, 'aggregate.json'));
    const fold0 = await infer({
      config,
      run: join(runDir, 'fold_0'),
      post: 'so tired',
      criterion: 'A6',
      loadModel: fakeLoader(),
    });
    expect(fold0.model.folds).toEqual([0]);
  });

  test('ensemble: the mean of the single-fold probabilities, one base model, unmerged', async () => {
    const lines = corpusLines(6);
    const log = newLog();
    const output = new PassThrough();
    const chunks: string[] = [];
    output.on('data', (c: Buffer) => chunks.push(c.toString()));
    const result = await infer({
      config,
      run: runDir,
      ensemble: true,
      input: Readable.from([lines.join('\n')]),
      output,
      chunkSize: 2,
      loadModel: fakeLoader(log),
    });
    expect(result.model).toMatchObject({
      ensemble: true,
      folds: [0, 1, 2],
      thresholdsSource: 'mean of folds',
    });
    expect(log.loads).toHaveLength(1);
    expect(log.merges).toBe(0);
    const ensemble = chunks
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Prediction);
    const singles = await Promise.all(
      [0, 1, 2].map(async (fold) => (await stream(lines, { run: `${runDir}/${fold}` })).records),
    );
    ensemble.forEach((p, i) => {
      const mean = singles.reduce((s, run) => s + run[i]!.probability, 0) / 3;
      expect(p.probability).toBeCloseTo(mean, 6);
      expect(p.threshold).toBeCloseTo(0.5, 10);
    });
  });

  test('usage errors', async () => {
    const base = { config, loadModel: fakeLoader() };
    await expect(infer({ ...base, post: 'x' })).rejects.toThrow(InferUsageError);
    await expect(infer({ ...base, checkpoint, run: runDir, post: 'x' })).rejects.toThrow(
      /only one/,
    );
    await expect(infer({ ...base, checkpoint })).rejects.toThrow(/nothing to score/);
    await expect(infer({ ...base, checkpoint, post: 'x', criterion: 'A10' })).rejects.toThrow(
      /unknown criterion/,
    );
    await expect(infer({ ...base, checkpoint, post: 'x', threshold: 2 })).rejects.toThrow(
      /\[0, 1\]/,
    );
    await expect(infer({ ...base, checkpoint, ensemble: true, post: 'x' })).rejects.toThrow(
      ModelResolutionError,
    );
    await expect(infer({ ...base, checkpoint: root, post: 'x' })).rejects.toThrow(
      /no adapter_config/,
    );
    await expect(
      infer({ ...base, checkpoint, base: join(root, 'nope'), post: 'x' }),
    ).rejects.toThrow(/--base/);
  });
});

function corpusLines(n: number): string[] {
  const posts = [
    'I cannot sleep',
    'nothing is fun',
    'I feel worthless',
    'no energy',
    'so sad today',
  ];
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      id: `p${i}`,
      post: `${posts[i % posts.length]} ${'and tired '.repeat(i % 4)}`,
      ...(i % 3 === 0 ? {} : { criterion: `A${(i % 9) + 1}` }),
    }),
  );
}
