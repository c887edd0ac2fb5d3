import { Readable } from 'node:stream';

import { loadCriteria } from '../../../src/data/index.js';
import {
  findCriterion,
  latencyFigures,
  meanThresholds,
  parseInputLine,
  parseThresholds,
  readLineChunks,
  resolveCriterion,
  splitFoldSuffix,
  thresholdFor,
  validateInput,
} from '../../../src/infer/index.js';

const criteria = loadCriteria('data/dsm5/criteria.json');

async function collect(text: string, chunkSize: number) {
  const chunks = [];
  for await (const chunk of readLineChunks(Readable.from([text]), chunkSize)) chunks.push(chunk);
  return chunks;
}

describe('criterion names', () => {
  test.each([
    ['A4', 'A4'],
    ['a4', 'A4'],
    [' A9 ', 'A9'],
    ['SLEEP_ISSUES', 'A4'],
    ['sleep issues', 'A4'],
    ['Sleep-Issues', 'A4'],
    ['suicidal_thoughts', 'A9'],
  ])('%s -> %s', (name, id) => {
    expect(findCriterion(criteria, name)?.id).toBe(id);
  });

  test.each(['A10', 'A0', 'sleep', '', 'B1'])('unknown %p', (name) => {
    expect(findCriterion(criteria, name)).toBeUndefined();
    expect(() => resolveCriterion(criteria, name)).toThrow(/unknown criterion.*A1, A2/);
  });
});

describe('JSONL input', () => {
  test('chunks lines, skips blank ones but keeps their numbers, strips a BOM', async () => {
    const chunks = await collect('\uFEFF{"post":"a"}\n\n{"post":"b"}\r\n{"post":"c"}\n\n', 2);
    expect(chunks).toEqual([
      [
        { line: 1, text: '{"post":"a"}' },
        { line: 3, text: '{"post":"b"}' },
      ],
      [{ line: 4, text: '{"post":"c"}' }],
    ]);
  });

  test('an empty input yields nothing', async () => {
    expect(await collect('', 4)).toEqual([]);
  });

  test('a valid line with a criterion, without one, with an id', () => {
    expect(
      parseInputLine(
        { line: 2, text: '{"id":"p1","post":"I sleep badly","criterion":"a4"}' },
        criteria,
      ),
    ).toEqual({
      line: 2,
      id: 'p1',
      post: 'I sleep badly',
      criteria: [criteria[3]],
    });
    const all = parseInputLine({ line: 3, text: '{"id":7,"post":"x"}' }, criteria);
    expect('criteria' in all && all.criteria.map((c) => c.id)).toEqual(criteria.map((c) => c.id));
  });

  test.each([
    ['{"post": "x"', /^invalid JSON/],
    ['[1,2]', /JSON object/],
    ['"text"', /JSON object/],
    ['{"id":"p"}', /missing "post"/],
    ['{"post":null}', /missing "post"/],
    ['{"post":12}', /must be a string/],
    ['{"post":"   "}', /empty/],
    ['{"post":"x","criterion":"A12"}', /unknown criterion "A12"/],
    ['{"post":"x","criterion":4}', /"criterion" must be a string/],
    ['{"post":"x","id":{"a":1}}', /id must be/],
  ])('bad line %s', (text, message) => {
    const record = parseInputLine({ line: 5, text }, criteria);
    expect(record).toMatchObject({ line: 5, error: expect.stringMatching(message) });
  });

  test('error records keep the id but never the post text', () => {
    const record = validateInput(
      { id: 'p9', post: 'secret words', criterion: 'nope' },
      4,
      criteria,
    );
    expect(record).toMatchObject({ line: 4, id: 'p9' });
    expect(JSON.stringify(record)).not.toContain('secret');
  });
});

describe('thresholds', () => {
  test('reads any thresholds file for its global and per-criterion thresholds, checked', () => {
    expect(parseThresholds({ global: 0.4, perCriterion: { A1: 0.3 }, fellBack: [] }, 'f')).toEqual({
      global: 0.4,
      perCriterion: { A1: 0.3 },
      source: 'f',
    });
    // The run-level file: provenance and tables beside the top-level ones, which are what counts.
    expect(
      parseThresholds({ global: 0.6, perCriterion: { A2: 0.7 }, foldMean: { global: 0.1 } }, 'g'),
    ).toEqual({ global: 0.6, perCriterion: { A2: 0.7 }, source: 'g' });
    expect(parseThresholds({ global: 0.6 }, 'g').perCriterion).toEqual({});
    expect(() => parseThresholds({ perCriterion: {} }, 'h')).toThrow(
      /^h: not a thresholds file: \(top level\) must have required property 'global'$/,
    );
    expect(() => parseThresholds({ global: 1.5 }, 'h')).toThrow(/^h: .*global must be <= 1$/);
    expect(() => parseThresholds({ global: 0.5, perCriterion: { A1: '0.3' } }, 'h')).toThrow(
      /perCriterion\.A1 must be number/,
    );
  });

  test('override > per criterion > global > 0.5', () => {
    const table = { global: 0.4, perCriterion: { A1: 0.3 }, source: 's' };
    expect(thresholdFor(table, 'A1', 0.9)).toEqual({ threshold: 0.9, origin: 'override' });
    expect(thresholdFor(table, 'A1')).toEqual({ threshold: 0.3, origin: 'per_criterion' });
    expect(thresholdFor(table, 'A2')).toEqual({ threshold: 0.4, origin: 'global' });
    expect(thresholdFor(null, 'A2')).toEqual({ threshold: 0.5, origin: 'default' });
    expect(thresholdFor(null, 'A2', 0)).toEqual({ threshold: 0, origin: 'override' });
  });

  test('mean of fold tables fills a missing criterion with that fold global', () => {
    const mean = meanThresholds([
      { global: 0.4, perCriterion: { A1: 0.2 }, source: 'a' },
      { global: 0.6, perCriterion: {}, source: 'b' },
    ]);
    expect(mean.global).toBeCloseTo(0.5);
    expect(mean.perCriterion.A1).toBeCloseTo(0.4);
  });
});

describe('run references', () => {
  test.each([
    ['outputs/r', 'outputs/r', null],
    ['outputs/r/', 'outputs/r', null],
    ['outputs/r/2', 'outputs/r', 2],
    ['outputs/r/fold_3', 'outputs/r', 3],
    ['abc123/1', 'abc123', 1],
    ['abc123', 'abc123', null],
  ])('%s', (ref, head, fold) => {
    expect(splitFoldSuffix(ref)).toEqual({ head, fold });
  });
});

describe('latency figures', () => {
  test('per-pair figures from batch timings', () => {
    const figures = latencyFigures(
      [
        { ms: 40, pairs: 4, seqLen: 10 },
        { ms: 30, pairs: 1, seqLen: 20 },
        { ms: 20, pairs: 1, seqLen: 20 },
      ],
      200,
    );
    expect(figures.batches).toBe(3);
    expect(figures.totalModelMs).toBe(90);
    expect(figures.msPerPairMean).toBe(15);
    expect(figures.msPerPairP50).toBe(20);
    expect(figures.msPerPairP95).toBeCloseTo(29, 10);
    expect(figures.pairsPerSecond).toBeCloseTo(6000 / 90);
  });
});
