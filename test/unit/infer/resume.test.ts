// inferFile's resume on what an interrupted run can leave: <output>.part cut at any byte (a torn
// line, half a chunk, half a record's nine criteria), a finished output, another input's part.
// The fake model's score depends on the ids only, so these checks are about bookkeeping; the
// byte-for-byte check against the real model, with real signals, is in
// test/integration/infer/interrupt.test.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { Config } from '../../../src/config/index.js';
import { createRng } from '../../../src/infra/index.js';
import {
  findResumePoint,
  inferFile,
  InferStoppedError,
  InferUsageError,
  type InferFileOptions,
} from '../../../src/infer/index.js';
import { corpus, fakeLoader, makeAdapter, makeBaseDir, testConfig } from './fixtures.js';

let root: string;
let checkpoint: string;
let config: Config;
let input: string;
let reference: Buffer;
const chunkSize = 8;

/** Records of every kind: one criterion, all nine, a bad line, a blank line between. */
function inputLines(count: number): string[] {
  const random = createRng(3);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const post = `${corpus[i % corpus.length]} ${i}`;
    const roll = random();
    if (roll < 0.05) lines.push('not json');
    else if (roll < 0.08) lines.push('');
    else if (roll < 0.2) lines.push(JSON.stringify({ id: i, post }));
    else lines.push(JSON.stringify({ id: `r${i}`, post, criterion: `A${1 + (i % 9)}` }));
  }
  return lines;
}

function options(output: string, extra: Partial<InferFileOptions> = {}): InferFileOptions {
  return {
    config,
    cwd: root,
    checkpoint,
    input,
    output,
    chunkSize,
    loadModel: fakeLoader(),
    ...extra,
  };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-infer-resume-'));
  const baseDir = await makeBaseDir(join(root, 'base'));
  checkpoint = makeAdapter(join(root, 'adapter'), baseDir, 0.3);
  config = await testConfig([
    'inference.batch_size=4',
    `data.criteria_path=${resolve('data/dsm5/criteria.json')}`,
  ]);
  input = join(root, 'in.jsonl');
  writeFileSync(input, `${inputLines(200).join('\n')}\n`);
  const result = await inferFile(options(join(root, 'reference.jsonl')));
  if (result.alreadyComplete) throw new Error('unexpected');
  reference = readFileSync(join(root, 'reference.jsonl'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('resuming <output>.part', () => {
  test('cut at any byte, resumed: the same bytes as an uninterrupted run', async () => {
    const random = createRng(17);
    const cuts = [0, 1, reference.length - 1, ...Array.from({ length: 12 }, () => random())].map(
      (x) => (x < 1 && x > 0 ? Math.floor(x * reference.length) : x),
    );
    for (const cut of cuts) {
      const output = join(root, `cut-${cut}.jsonl`);
      writeFileSync(`${output}.part`, reference.subarray(0, cut));
      const result = await inferFile(options(output, { resume: true }));
      expect({ cut, same: readFileSync(output).equals(reference) }).toEqual({ cut, same: true });
      expect(existsSync(`${output}.part`)).toBe(false);
      expect(existsSync(`${output}.lock`)).toBe(false);
      if (result.alreadyComplete) throw new Error('unexpected');
      // Whole chunks were kept; the counts of both runs add up to the input's records.
      const records = result.counts.records + (result.resumed?.records ?? 0);
      expect(records).toBe(inputLines(200).filter((l) => l.trim() !== '').length);
      expect((result.resumed?.records ?? 0) % chunkSize).toBe(0);
    }
  });

  test('the resume point keeps whole chunks and counts their error records', async () => {
    const part = join(root, 'point.part');
    writeFileSync(part, reference);
    const whole = await findResumePoint(part, chunkSize);
    const lines = reference.toString('utf8').trimEnd().split('\n');
    const records = new Set(lines.map((l) => JSON.parse(l).line)).size;
    // The last record may be incomplete as far as the scan knows: its chunk is redone.
    expect(whole.records).toBe(Math.floor((records - 1) / chunkSize) * chunkSize);
    const kept = reference.subarray(0, whole.bytes).toString('utf8').trimEnd().split('\n');
    expect(whole.outputLines).toBe(kept.length);
    expect(whole.failed).toBe(kept.filter((l) => 'error' in JSON.parse(l)).length);
    expect(whole.failed).toBeGreaterThan(0);
    expect(whole.lastLine).toBe(JSON.parse(kept[kept.length - 1]!).line);
  });

  test('--resume with a finished output and no part: nothing to do, no model loaded', async () => {
    const output = join(root, 'finished.jsonl');
    writeFileSync(output, reference);
    let loads = 0;
    const result = await inferFile(
      options(output, {
        resume: true,
        loadModel: async (spec) => {
          loads += 1;
          return fakeLoader()(spec);
        },
      }),
    );
    expect(result).toEqual({ alreadyComplete: true, outputPath: output });
    expect(loads).toBe(0);
  });

  test('--resume with neither a part nor an output starts afresh', async () => {
    const output = join(root, 'fresh.jsonl');
    await inferFile(options(output, { resume: true }));
    expect(readFileSync(output).equals(reference)).toBe(true);
  });

  test('a fresh run does not overwrite an interrupted run part; an empty part is reused', async () => {
    const output = join(root, 'keep.jsonl');
    writeFileSync(`${output}.part`, reference.subarray(0, 500));
    await expect(inferFile(options(output))).rejects.toThrow(
      /keep\.jsonl\.part holds the output of an interrupted run: continue it with --resume/,
    );
    expect(readFileSync(`${output}.part`).equals(reference.subarray(0, 500))).toBe(true);
    writeFileSync(`${output}.part`, '');
    await inferFile(options(output));
    expect(readFileSync(output).equals(reference)).toBe(true);
  });

  test('a part made from another input is refused, naming both line numbers', async () => {
    const output = join(root, 'other.jsonl');
    writeFileSync(`${output}.part`, reference);
    const other = join(root, 'other-input.jsonl');
    writeFileSync(other, `\n\n${inputLines(200).join('\n')}\n`);
    const run = inferFile(options(output, { resume: true, input: other }));
    await expect(run).rejects.toBeInstanceOf(InferUsageError);
    await expect(inferFile(options(output, { resume: true, input: other }))).rejects.toThrow(
      /not the input that output was made from/,
    );
    const short = join(root, 'short-input.jsonl');
    writeFileSync(short, `${inputLines(20).join('\n')}\n`);
    await expect(inferFile(options(output, { resume: true, input: short }))).rejects.toThrow(
      /the input has only \d+/,
    );
    // Refused before anything was cut: the part is as it was.
    expect(readFileSync(`${output}.part`).equals(reference)).toBe(true);
  });

  test('a part that is not an infer output is refused', async () => {
    const output = join(root, 'garbage.jsonl');
    writeFileSync(`${output}.part`, 'hello\nworld\n{"line":1}\n');
    await expect(inferFile(options(output, { resume: true }))).rejects.toThrow(
      /garbage\.jsonl\.part: line 1 is not JSON/,
    );
  });

  test('a model error mid-stream keeps the chunks written and says how to go on', async () => {
    const output = join(root, 'crash.jsonl');
    let calls = 0;
    const crashing = fakeLoader();
    const error = await inferFile(
      options(output, {
        loadModel: async (spec) => {
          const model = await crashing(spec);
          return {
            ...model,
            predictProba: async (batch) => {
              if (++calls > 20) throw new Error('the device fell over');
              return model.predictProba(batch);
            },
          };
        },
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InferStoppedError);
    expect((error as Error).message).toMatch(
      /the device fell over; the output up to input line \d+ is in .*crash\.jsonl\.part: continue with --resume/,
    );
    const part = readFileSync(`${output}.part`);
    expect(part.length).toBeGreaterThan(0);
    expect(reference.subarray(0, part.length).equals(part)).toBe(true);
    expect(existsSync(`${output}.lock`)).toBe(false);
    await inferFile(options(output, { resume: true }));
    expect(readFileSync(output).equals(reference)).toBe(true);
  });

  test('an abort stops after the chunk in hand: whole chunks only, then resumable', async () => {
    const output = join(root, 'abort.jsonl');
    const abort = new AbortController();
    let chunks = 0;
    const error = await inferFile(
      options(output, {
        signal: abort.signal,
        logger: { debug() {}, info() {}, warn() {}, error() {} } as never,
        onChunk: () => undefined,
        loadModel: async (spec) => {
          const model = await fakeLoader()(spec);
          return {
            ...model,
            predictProba: async (batch) => {
              if (++chunks === 7) abort.abort();
              return model.predictProba(batch);
            },
          };
        },
      } as Partial<InferFileOptions>),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InferStoppedError);
    expect((error as InferStoppedError).interrupted).toBe(true);
    const part = readFileSync(`${output}.part`);
    expect(part[part.length - 1]).toBe(0x0a);
    expect(reference.subarray(0, part.length).equals(part)).toBe(true);
    await inferFile(options(output, { resume: true }));
    expect(readFileSync(output).equals(reference)).toBe(true);
  });
});
