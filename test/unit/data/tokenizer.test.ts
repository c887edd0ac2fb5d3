import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  cachedTokenRows,
  loadTokenizer,
  padBatch,
  tokenCacheKey,
  trainBpe,
  trainTinyTokenizer,
} from '../../../src/data/index.js';

let dir: string;
const corpus = [
  'I have not slept more than four hours a night for weeks.',
  'I feel tired every single day no matter how much I rest.',
  'My appetite is gone and food tastes like cardboard.',
  'Nothing is fun anymore, not even gaming.',
].flatMap((s) => Array.from({ length: 5 }, () => s));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-tok-'));
  await trainTinyTokenizer({ corpus, vocabSize: 400, outDir: join(dir, 'tok') });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('trainTinyTokenizer', () => {
  it('writes a Llama-layout vocabulary deterministically', () => {
    const a = trainBpe(corpus, 400);
    const b = trainBpe(corpus, 400);
    expect(b).toEqual(a);
    expect([...a.vocab.keys()].slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(a.vocab.get('<0xFF>')).toBe(258);
    expect(a.vocab.size).toBeLessThanOrEqual(400);
    const json = JSON.parse(readFileSync(join(dir, 'tok', 'tokenizer.json'), 'utf8'));
    expect(json.model).toMatchObject({ type: 'BPE', byte_fallback: true, unk_token: '<unk>' });
    expect(json.pre_tokenizer).toMatchObject({ type: 'Metaspace', prepend_scheme: 'first' });
    expect(() => trainBpe(corpus, 100)).toThrow(/vocabSize/);
  });
});

describe('loadTokenizer', () => {
  it('adds BOS, defaults pad to <unk> id 0 and right padding', async () => {
    const tok = loadTokenizer(join(dir, 'tok'));
    expect(tok).toMatchObject({
      bosTokenId: 1,
      eosTokenId: 2,
      unkTokenId: 0,
      padTokenId: 0,
      paddingSide: 'right',
      addBos: true,
    });
    const ids = await tok.encode('I feel tired');
    expect(ids[0]).toBe(1);
    expect(await tok.decode(ids)).toBe('I feel tired');
    expect(await tok.countTokens('I feel tired')).toBe(ids.length - 1);
    // Unknown characters fall back to bytes, never to <unk>.
    expect(await tok.encodeRaw('😭')).not.toContain(0);
    expect(await tok.decode(await tok.encode('😭 ok'))).toBe('😭 ok');
  });

  it('encodes batches into flat padded arrays, left or right, truncating to maxLength', async () => {
    const tok = loadTokenizer(join(dir, 'tok'));
    const texts = ['I feel tired', 'I have not slept more than four hours a night for weeks.'];
    const a = await tok.encode(texts[0] as string);
    const batch = await tok.encodeBatch(texts, 8);
    expect(batch.batchSize).toBe(2);
    expect(batch.seqLen).toBe(8);
    expect(batch.lengths).toEqual([a.length, 8]);
    expect(batch.truncated).toBe(1);
    expect(Array.from(batch.inputIds.subarray(0, a.length))).toEqual(a);
    expect(Array.from(batch.inputIds.subarray(a.length, 8))).toEqual(
      new Array(8 - a.length).fill(0),
    );
    expect(Array.from(batch.attentionMask.subarray(0, 8))).toEqual([
      ...a.map(() => 1),
      ...new Array(8 - a.length).fill(0),
    ]);

    const left = loadTokenizer(join(dir, 'tok'), { paddingSide: 'left', padTokenId: 2 });
    const lb = await left.encodeBatch(texts, 64);
    const row0 = Array.from(lb.inputIds.subarray(0, lb.seqLen));
    expect(row0.slice(lb.seqLen - a.length)).toEqual(a);
    expect(row0.slice(0, lb.seqLen - a.length).every((v) => v === 2)).toBe(true);
    expect(left.hash).not.toBe(tok.hash);

    const noBos = loadTokenizer(join(dir, 'tok'), { addBos: false });
    expect(await noBos.encode('I feel tired')).toEqual(a.slice(1));
    expect(() => padBatch([[1]], { maxLength: 0, padTokenId: 0, paddingSide: 'right' })).toThrow(
      /maxLength/,
    );
  });

  it('explains a missing tokenizer.json', () => {
    expect(() => loadTokenizer(dir)).toThrow(/no tokenizer\.json/);
  });
});

describe('cachedTokenRows', () => {
  it('stores rows once and reads them back on the same key only', async () => {
    const cacheDir = join(dir, 'cache');
    const key = {
      datasetHash: 'd',
      tokenizerHash: 't',
      template: '{post} {criterion}',
      maxLength: 16,
    };
    let computed = 0;
    const compute = async () => {
      computed++;
      return [[1, 2, 3], [], [1, -5, 70000]];
    };
    const first = await cachedTokenRows(cacheDir, key, 3, compute);
    const second = await cachedTokenRows(cacheDir, key, 3, compute);
    expect(first.hit).toBe(false);
    expect(second.hit).toBe(true);
    expect(computed).toBe(1);
    expect(second.rows.map((r) => Array.from(r))).toEqual([[1, 2, 3], [], [1, -5, 70000]]);
    const other = await cachedTokenRows(cacheDir, { ...key, maxLength: 32 }, 3, compute);
    expect(other.hit).toBe(false);
    expect(tokenCacheKey(key)).not.toBe(
      tokenCacheKey({ ...key, template: 'x {post} {criterion}' }),
    );
    expect(tokenCacheKey(key)).not.toBe(tokenCacheKey({ ...key, variant: 'tail' }));
  });
});
