// Choosing the tokenizer source, building tokenizers from GGUF metadata and SentencePiece models,
// and the errors for what cannot be built. Parity with transformers is in test/parity/data/.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import protobuf from 'protobufjs/light.js';

import {
  findTokenizerSource,
  generateMerges,
  ggufTokenizer,
  loadTokenizer,
  readSentencePieceModel,
  TokenizerError,
  trainTinyTokenizer,
  type GgufMetadata,
} from '../../../src/data/index.js';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-toksrc-'));
  await trainTinyTokenizer({
    corpus: Array.from({ length: 10 }, () => 'I feel tired and I cannot sleep at night.'),
    vocabSize: 300,
    outDir: join(dir, 'tiny'),
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const touch = (path: string) => writeFileSync(path, '');

describe('findTokenizerSource', () => {
  it('prefers tokenizer.json, then tokenizer.model, then the one .gguf file', () => {
    const d = join(dir, 'pick');
    mkdirSync(d);
    touch(join(d, 'model.gguf'));
    expect(findTokenizerSource(d)).toEqual({ kind: 'gguf', path: join(d, 'model.gguf') });
    touch(join(d, 'tokenizer.model'));
    expect(findTokenizerSource(d)).toEqual({
      kind: 'tokenizer.model',
      path: join(d, 'tokenizer.model'),
    });
    touch(join(d, 'tokenizer.json'));
    expect(findTokenizerSource(d)).toEqual({
      kind: 'tokenizer.json',
      path: join(d, 'tokenizer.json'),
    });
    expect(findTokenizerSource(join(d, 'model.gguf')).kind).toBe('gguf');
  });

  it('names the path and what was expected when there is no source', () => {
    const d = join(dir, 'none');
    mkdirSync(d);
    expect(() => findTokenizerSource(d)).toThrow(TokenizerError);
    expect(() => findTokenizerSource(d)).toThrow(
      `${d}: no tokenizer.json, tokenizer.model or .gguf file here`,
    );
    touch(join(d, 'a.gguf'));
    touch(join(d, 'b.GGUF'));
    expect(() => findTokenizerSource(d)).toThrow(/2 GGUF files \(a\.gguf, b\.GGUF\)/);
    expect(() => findTokenizerSource(join(d, 'missing'))).toThrow(/no such file or directory/);
    touch(join(d, 'weights.bin'));
    expect(() => findTokenizerSource(join(d, 'weights.bin'))).toThrow(
      /weights\.bin: not a model directory or a \.gguf file/,
    );
  });
});

describe('generateMerges', () => {
  const vocab = new Map(['a', 'b', 'c', 'ab', 'bc', 'abc'].map((t, i) => [t, i]));

  it('orders merges by the merged token id, then the halves\u2019 lengths', () => {
    expect(generateMerges(vocab)).toEqual([
      ['a', 'b'],
      ['b', 'c'],
      ['a', 'bc'],
      ['ab', 'c'],
    ]);
  });

  it('orders merges by score, highest first, longer left half first on ties', () => {
    const scores = new Map([
      ['a', 0],
      ['b', 0],
      ['c', 0],
      ['bc', -1],
      ['ab', -2],
      ['abc', -3],
    ]);
    expect(generateMerges(vocab, scores)).toEqual([
      ['b', 'c'],
      ['a', 'b'],
      ['ab', 'c'],
      ['a', 'bc'],
    ]);
  });

  it('cuts tokens at code points, not UTF-16 units', () => {
    const v = new Map(['😭', 'x', '😭x'].map((t, i) => [t, i]));
    expect(generateMerges(v)).toEqual([['😭', 'x']]);
  });
});

/** A small byte-level vocabulary: the bytes of "hello world" plus a few merges and specials. */
function gpt2Metadata(overrides: Record<string, unknown> = {}): GgufMetadata {
  const tokens = ['<|endoftext|>', '<|im_start|>', 'h', 'e', 'l', 'o', 'Ġ', 'w', 'r', 'd', 'he'];
  tokens.push('ll', 'hell', 'hello', 'Ġw', 'or', 'Ġwor', 'ld', 'Ġworld', '<think>');
  return {
    'general.architecture': 'llama',
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'gpt-2',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': Int32Array.from(tokens, (t) =>
      t === '<think>' ? 4 : t.startsWith('<|') ? 3 : 1,
    ),
    'tokenizer.ggml.merges': [
      'h e',
      'l l',
      'he ll',
      'hell o',
      'Ġ w',
      'o r',
      'Ġw or',
      'l d',
      'Ġwor ld',
    ],
    'tokenizer.ggml.bos_token_id': 1n,
    'tokenizer.ggml.eos_token_id': 0,
    'tokenizer.ggml.unknown_token_id': 0,
    ...overrides,
  };
}

describe('GGUF tokenizers', () => {
  it('builds a byte-level BPE tokenizer from gpt2 metadata (typed arrays, bigint ids)', async () => {
    const gguf = join(dir, 'tiny.gguf');
    touch(gguf);
    const tok = loadTokenizer(gguf, { ggufMetadata: gpt2Metadata() });
    expect(tok).toMatchObject({
      source: { kind: 'gguf', path: gguf },
      bosTokenId: 1,
      eosTokenId: 0,
      unkTokenId: 0,
      padTokenId: 0,
      addBos: false,
      addEos: false,
      vocabSize: 20,
    });
    expect(await tok.encode('hello world')).toEqual([13, 18]);
    // Control tokens match whole and are skipped in decoding; user-defined ones are kept.
    expect(await tok.encode('<|im_start|>hello<think>')).toEqual([1, 13, 19]);
    expect(await tok.decode([1, 13, 19])).toBe('hello<think>');
    const withBos = loadTokenizer(gguf, {
      ggufMetadata: gpt2Metadata({ 'tokenizer.ggml.add_bos_token': true }),
    });
    expect(await withBos.encode('hello')).toEqual([1, 13]);
    expect(withBos.hash).not.toBe(tok.hash);
  });

  it('builds a SentencePiece-style tokenizer from llama metadata, merges from scores', async () => {
    const tokens = ['<unk>', '<s>', '</s>', '▁', 'a', 'b', '▁a', 'ab', '▁ab'];
    const bytes = Array.from(
      { length: 256 },
      (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
    );
    const all = [...tokens.slice(0, 3), ...bytes, ...tokens.slice(3)];
    const metadata: GgufMetadata = {
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': all,
      'tokenizer.ggml.scores': Float32Array.from(all, (_, i) => (i < 259 ? 0 : -i)),
      'tokenizer.ggml.token_type': all.map((t, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)),
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.eos_token_id': 2,
      'tokenizer.ggml.unknown_token_id': 0,
    };
    const gguf = join(dir, 'llama.gguf');
    touch(gguf);
    const tok = loadTokenizer(gguf, { ggufMetadata: metadata });
    expect(tok.addBos).toBe(true);
    // "▁ab ab": Metaspace puts "▁" first; "ab" without a space is its own token; "é" is bytes.
    expect(await tok.encode('ab ab')).toEqual([1, 264, 264]);
    expect(await tok.encode('abé')).toEqual([1, 264, 3 + 0xc3, 3 + 0xa9]);
    expect(await tok.decode(await tok.encode('abé ab'))).toBe('abé ab');
    const noPrefix = loadTokenizer(gguf, {
      ggufMetadata: { ...metadata, 'tokenizer.ggml.add_space_prefix': false },
    });
    expect(await noPrefix.encodeRaw('ab')).toEqual([263]);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'model',
      { 'tokenizer.ggml.model': 'bert' },
      /GGUF tokenizer model "bert" is not supported \(supported: gpt2, llama\)/,
    ],
    [
      'no model',
      { 'tokenizer.ggml.model': undefined },
      /no tokenizer\.ggml\.model: the file carries no tokenizer/,
    ],
    [
      'pre',
      { 'tokenizer.ggml.pre': 'qwen2' },
      /tokenizer\.ggml\.pre = "qwen2" is not supported \(supported: default, gpt2, gpt-2, smollm/,
    ],
    [
      'tokens',
      { 'tokenizer.ggml.tokens': 'abc' },
      /tokenizer\.ggml\.tokens: an array of strings expected, got string/,
    ],
    [
      'token',
      { 'tokenizer.ggml.tokens': ['a', 7] },
      /tokenizer\.ggml\.tokens\[1\]: a string expected, got number/,
    ],
    [
      'types',
      { 'tokenizer.ggml.token_type': [1, 1] },
      /token_type has 2 entries but tokenizer\.ggml\.tokens has 20/,
    ],
    [
      'merges',
      { 'tokenizer.ggml.merges': ['h e', 'hello'] },
      /tokenizer\.ggml\.merges\[1\] = "hello": "left right" expected/,
    ],
    [
      'no merges',
      { 'tokenizer.ggml.merges': undefined },
      /tokenizer\.ggml\.merges: an array of "left right" merges expected, it is missing/,
    ],
    [
      'bos',
      { 'tokenizer.ggml.bos_token_id': 20 },
      /bos_token_id = 20 is not a token id \(the vocabulary has 20 tokens\)/,
    ],
    [
      'flag',
      { 'tokenizer.ggml.add_bos_token': 1 },
      /add_bos_token: a boolean expected, got number/,
    ],
    [
      'add_bos',
      { 'tokenizer.ggml.add_bos_token': true, 'tokenizer.ggml.bos_token_id': undefined },
      /bos_token_id: a BOS token \(add_bos_token is set\) expected/,
    ],
  ])('rejects bad metadata (%s) naming the file and the key', (_, overrides, message) => {
    const metadata = Object.fromEntries(
      Object.entries(gpt2Metadata(overrides)).filter(([, v]) => v !== undefined),
    );
    expect(() => ggufTokenizer(metadata, '/models/x.gguf')).toThrow(TokenizerError);
    expect(() => ggufTokenizer(metadata, '/models/x.gguf')).toThrow(/^\/models\/x\.gguf: /);
    expect(() => ggufTokenizer(metadata, '/models/x.gguf')).toThrow(message);
  });

  it('needs a metadata reader for a GGUF source', () => {
    const gguf = join(dir, 'tiny.gguf');
    touch(gguf);
    expect(() => loadTokenizer(gguf)).toThrow(
      `${gguf}: the tokenizer of a GGUF file is built from its metadata`,
    );
  });
});

describe('SentencePiece tokenizer.model', () => {
  // The fields of sentencepiece_model.proto a test model needs.
  const root = protobuf.Root.fromJSON({
    nested: {
      ModelProto: {
        fields: {
          pieces: { rule: 'repeated', type: 'Piece', id: 1 },
          trainerSpec: { type: 'TrainerSpec', id: 2 },
        },
      },
      Piece: {
        fields: {
          piece: { type: 'string', id: 1 },
          score: { type: 'float', id: 2 },
          type: { type: 'int32', id: 3 },
        },
      },
      TrainerSpec: {
        fields: { modelType: { type: 'int32', id: 3 }, byteFallback: { type: 'bool', id: 35 } },
      },
    },
  });
  const ModelProto = root.lookupType('ModelProto');
  const encode = (message: Record<string, unknown>) =>
    ModelProto.encode(ModelProto.fromObject(message)).finish();
  const pieces = [
    { piece: '<unk>', score: 0, type: 2 },
    { piece: '<s>', score: 0, type: 3 },
    { piece: '</s>', score: 0, type: 3 },
    { piece: '▁a', score: -1, type: 1 },
  ];

  function modelDir(name: string, bytes: Uint8Array): string {
    const d = join(dir, name);
    mkdirSync(d);
    writeFileSync(join(d, 'tokenizer.model'), bytes);
    return d;
  }

  it('reads the pieces, with the .proto defaults for absent fields', () => {
    const model = readSentencePieceModel(encode({ pieces }), 'x/tokenizer.model');
    expect(model.pieces).toEqual(pieces);
    expect(model.trainerSpec).toEqual({
      modelType: 1,
      byteFallback: false,
      unkId: 0,
      bosId: 1,
      eosId: 2,
      padId: -1,
    });
    expect(model.normalizerSpec).toMatchObject({ addDummyPrefix: true });
  });

  it('rejects what it cannot convert, naming the file', () => {
    const garbage = modelDir('garbage', Buffer.from('{"not": "a protobuf"}'));
    expect(() => loadTokenizer(garbage)).toThrow(
      `${join(garbage, 'tokenizer.model')}: not a SentencePiece model (protobuf ModelProto expected)`,
    );
    const unigram = modelDir('unigram', encode({ pieces }));
    expect(() => loadTokenizer(unigram)).toThrow(
      /tokenizer\.model: a SentencePiece Unigram model; only BPE models \(the Llama family's\) are supported/,
    );
    const noBytes = modelDir('nobytes', encode({ pieces, trainerSpec: { modelType: 2 } }));
    expect(() => loadTokenizer(noBytes)).toThrow(/trained without byte_fallback/);
    const empty = modelDir('empty', new Uint8Array());
    expect(() => loadTokenizer(empty)).toThrow(/a SentencePiece model with no pieces/);
  });

  it('checks tokenizer_config.json against the model', () => {
    const bytes = Array.from({ length: 256 }, (_, b) => ({
      piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
      score: 0,
      type: 6,
    }));
    const model = encode({
      pieces: [...pieces.slice(0, 3), ...bytes, pieces[3]],
      trainerSpec: { modelType: 2, byteFallback: true },
    });
    const d = modelDir('config', model);
    const config = join(d, 'tokenizer_config.json');
    const added = (id: number, content: string) => ({
      added_tokens_decoder: { [id]: { content, special: true } },
    });
    writeFileSync(config, JSON.stringify(added(1, '<bos>')));
    expect(() => loadTokenizer(d)).toThrow(
      `${config}: added_tokens_decoder gives id 1 to "<bos>", but ${join(d, 'tokenizer.model')} has "<s>" there`,
    );
    writeFileSync(config, JSON.stringify(added(261, '<pad>')));
    expect(() => loadTokenizer(d)).toThrow(/has id 261, but the next free id is 260/);
    writeFileSync(config, JSON.stringify({ add_bos_token: 'yes' }));
    expect(() => loadTokenizer(d)).toThrow(`${config}: add_bos_token must be true or false`);
    writeFileSync(config, '{');
    expect(() => loadTokenizer(d)).toThrow(`${config}: not valid JSON`);
    writeFileSync(config, JSON.stringify({ bos_token: null }));
    expect(() => loadTokenizer(d)).toThrow(
      `${config}: add_bos_token is set but there is no BOS token`,
    );
  });

  it('takes tokenizer.json over tokenizer.model, keeping the tokenizer.json identity', () => {
    const tiny = join(dir, 'tiny');
    const before = loadTokenizer(tiny);
    const both = join(dir, 'both');
    mkdirSync(both);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      copyFileSync(join(tiny, f), join(both, f));
    }
    writeFileSync(join(both, 'tokenizer.model'), encode({ pieces }));
    const after = loadTokenizer(both);
    expect(after.source.kind).toBe('tokenizer.json');
    expect(after.hash).toBe(before.hash);
  });
});
