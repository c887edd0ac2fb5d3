// Tokenizers built from a SentencePiece tokenizer.model and from GGUF metadata must give the ids
// transformers gives: LlamaTokenizerFast on a tokenizer.model trained here with `sentencepiece`
// (with several tokenizer_config.json variants), AutoTokenizer(gguf_file=) on a GGUF `llama`
// tokenizer written from the same model, on a byte-level GGUF with Llama 3's pre-tokenizer and on
// SmolLM2's GGUF (`gpt2`, `smollm`); the GGUF metadata is read by the native addon (openTokenizer).
// The texts cover unicode, emoji, whitespace runs, newlines and tabs, digits and the nine DSM-5
// criteria; ids with and without special tokens, decoding, and the tokenizer.json itself are
// compared.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import {
  generateSyntheticDataset,
  ggufTokenizer,
  loadCriteria,
  loadTokenizer,
  openTokenizer,
  readSentencePieceModel,
  readTokenizerConfig,
  sentencePieceTokenizer,
  type GgufMetadata,
  type Tokenizer,
} from '../../../src/data/index.js';
import { TRICKY_TEXTS, WHITESPACE_AND_DIGIT_TEXTS } from './tokenizerTexts.js';

const python = resolve('.venv/bin/python');
const oracle = resolve('test/parity/data/tokenizer_sources_oracle.py');
const smollm2 = resolve('models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const describeIfPython = existsSync(python) ? describe : describe.skip;

interface HfTokenizer {
  ids: number[][];
  raw: number[][];
  decoded: string[];
  json: Record<string, unknown> & { model: Record<string, unknown> };
  class: string;
  bos_token_id: number | null;
  eos_token_id: number | null;
  unk_token_id: number | null;
  pad_token_id: number | null;
  vocab_size: number;
}

interface OracleAnswer {
  sentencepiece: { raw: number[][] };
  spm: Record<string, HfTokenizer & { dir: string }>;
  gguf_llama: HfTokenizer & { path: string; metadata: GgufMetadata };
  gguf_llama3: HfTokenizer & { path: string; metadata: GgufMetadata };
  smollm2?: HfTokenizer & { metadata: GgufMetadata; llamacpp_split_raw: number[][] };
}

const special = (content: string) => ({
  __type: 'AddedToken',
  content,
  lstrip: false,
  normalized: false,
  rstrip: false,
  single_word: false,
});

// tokenizer_config.json variants, as Llama-2 and its fine-tunes ship them.
const SPM_CONFIGS: Record<string, unknown> = {
  // Llama-2-chat-hf's: BOS, no EOS, legacy=false.
  llama2: {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: special('<s>'),
    eos_token: special('</s>'),
    unk_token: special('<unk>'),
    pad_token: null,
    legacy: false,
    clean_up_tokenization_spaces: false,
    tokenizer_class: 'LlamaTokenizer',
  },
  // A fine-tune that added a pad token after the vocabulary, adds EOS and keeps legacy spacing.
  padded_legacy: {
    add_bos_token: true,
    add_eos_token: true,
    pad_token: '<pad>',
    legacy: true,
    added_tokens_decoder: {
      '1200': {
        content: '<pad>',
        lstrip: false,
        normalized: false,
        rstrip: false,
        single_word: false,
        special: true,
      },
    },
    tokenizer_class: 'LlamaTokenizer',
  },
  // No prefix space, no BOS.
  no_prefix: { add_bos_token: false, add_prefix_space: false, legacy: false },
  // tokenizer.model alone.
  bare: null,
};

// Text that a Metaspace tokenizer does not give back unchanged: Metaspace puts no "▁" before text
// that already starts with one (so one leading space is lost in decoding), "▁" decodes as a space,
// and special tokens are skipped.
const AMBIGUOUS_FOR_METASPACE = /^\s|\u2581|<s>|<\/s>|<unk>|<pad>/u;

/** What transformers' tokenizer.json says about the parts that decide ids and decoding. */
const parts = (json: Record<string, unknown> & { model: Record<string, unknown> }) => ({
  normalizer: json.normalizer,
  pre_tokenizer: json.pre_tokenizer,
  decoder: json.decoder,
  post_processor: json.post_processor,
  added_tokens: json.added_tokens,
  model: json.model,
});

describeIfPython('tokenizers from tokenizer.model and GGUF metadata equal transformers', () => {
  let dir: string;
  let texts: string[];
  let answer: OracleAnswer;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mentallam-toksources-'));
    const criteria = loadCriteria(resolve('data/dsm5/criteria.json')).map((c) => c.description);
    const posts = generateSyntheticDataset({ seed: 11, nPosts: 12 }).posts.map((p) => p.text);
    texts = [...TRICKY_TEXTS, ...WHITESPACE_AND_DIGIT_TEXTS, ...criteria, ...posts];
    const corpus = [
      ...generateSyntheticDataset({ seed: 3, nPosts: 300 }).posts.map((p) => p.text),
      ...criteria,
      ...WHITESPACE_AND_DIGIT_TEXTS,
    ];
    const run = spawnSync(python, [oracle], {
      input: JSON.stringify({
        workdir: dir,
        texts,
        corpus,
        spm_configs: SPM_CONFIGS,
        smollm2: existsSync(smollm2) ? smollm2 : null,
      }),
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    });
    if (run.status !== 0) throw new Error(`oracle failed: ${run.stderr}`);
    answer = JSON.parse(run.stdout) as OracleAnswer;
  }, 600_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Ours against transformers on every text: ids with/without specials, decoding. */
  async function expectSameIds(tok: Tokenizer, hf: HfTokenizer, rawIds = hf.raw) {
    const ours = await Promise.all(texts.map((t) => tok.encode(t)));
    const raw = await Promise.all(texts.map((t) => tok.encodeRaw(t)));
    const decoded = await Promise.all(ours.map((ids) => tok.decode(ids)));
    texts.forEach((text, i) => {
      expect({ text, ids: ours[i] }).toEqual({ text, ids: hf.ids[i] });
      expect({ text, raw: raw[i] }).toEqual({ text, raw: rawIds[i] });
      expect({ text, decoded: decoded[i] }).toEqual({ text, decoded: hf.decoded[i] });
    });
    expect(tok.bosTokenId).toBe(hf.bos_token_id);
    expect(tok.eosTokenId).toBe(hf.eos_token_id);
    expect(tok.unkTokenId).toBe(hf.unk_token_id);
    expect(tok.vocabSize).toBe(hf.vocab_size);
    return { ours, decoded };
  }

  it.each(Object.keys(SPM_CONFIGS).filter((n) => n !== 'bare'))(
    'tokenizer.model with the %s tokenizer_config.json',
    async (name) => {
      const hf = answer.spm[name] as OracleAnswer['spm'][string];
      expect(hf.class).toBe('LlamaTokenizer');
      const tok = loadTokenizer(hf.dir);
      expect(tok.source).toEqual({
        kind: 'tokenizer.model',
        path: join(hf.dir, 'tokenizer.model'),
      });
      const { decoded } = await expectSameIds(tok, hf);
      if (hf.pad_token_id !== null) expect(tok.padTokenId).toBe(hf.pad_token_id);

      // The tokenizer.json transformers built is the one built here.
      const modelPath = join(hf.dir, 'tokenizer.model');
      const configPath = join(hf.dir, 'tokenizer_config.json');
      const built = sentencePieceTokenizer(
        readSentencePieceModel(readFileSync(modelPath), modelPath),
        readTokenizerConfig(configPath),
        modelPath,
        configPath,
      );
      expect(parts(built.json as typeof hf.json)).toEqual(parts(hf.json));

      // Decoding gives the text back, except where the prefix space is ambiguous (text that
      // starts with whitespace or holds "▁") or a special token is skipped.
      texts.forEach((text, i) => {
        if (!AMBIGUOUS_FOR_METASPACE.test(text)) {
          expect({ text, decoded: decoded[i] }).toEqual({ text, decoded: text });
        }
      });
    },
  );

  it('tokenizer.model alone: transformers 5 adds no BOS without tokenizer_config.json, Llama does', async () => {
    const hf = answer.spm.bare as OracleAnswer['spm'][string];
    const tok = loadTokenizer(hf.dir);
    const ours = await Promise.all(texts.map((t) => tok.encode(t)));
    texts.forEach((text, i) => {
      expect({ text, ids: ours[i] }).toEqual({ text, ids: [1, ...(hf.raw[i] as number[])] });
    });
    expect(hf.ids).toEqual(hf.raw);
  });

  it('tokenizer.model agrees with SentencePiece itself, except where transformers does not', async () => {
    // The model was trained with identity normalisation (as Llama-2's), so transformers' Llama
    // conversion cuts the pieces SentencePiece cuts, except: SentencePiece always puts "▁" before
    // the text while Metaspace does not when it already starts with whitespace or "▁", and
    // SentencePiece does not match special tokens in the text.
    const tok = loadTokenizer((answer.spm.llama2 as { dir: string }).dir);
    const raw = await Promise.all(texts.map((t) => tok.encodeRaw(t)));
    const differ = texts.filter(
      (_, i) => JSON.stringify(raw[i]) !== JSON.stringify(answer.sentencepiece.raw[i]),
    );
    // SentencePiece also puts "▁" before a user-defined piece that starts the text.
    for (const text of differ)
      expect(text).toMatch(new RegExp(`${AMBIGUOUS_FOR_METASPACE.source}|^<criterion>`, 'u'));
    expect(texts.length - differ.length).toBeGreaterThan(40);
  });

  it('a GGUF llama (SentencePiece) tokenizer: scores, token types, BOS from the metadata', async () => {
    const hf = answer.gguf_llama;
    // By file and by the directory holding it.
    for (const where of [hf.path, dirname(hf.path)]) {
      const tok = await openTokenizer(where);
      expect(tok.source).toEqual({ kind: 'gguf', path: hf.path });
      expect(tok.addBos).toBe(true);
      await expectSameIds(tok, hf);
    }
    expect(parts(ggufTokenizer(hf.metadata, hf.path).json as typeof hf.json)).toEqual(
      parts(hf.json),
    );
  });

  it("a GGUF gpt2 tokenizer with Llama 3's pre-tokenizer (llama-bpe)", async () => {
    const hf = answer.gguf_llama3;
    expect(hf.metadata['tokenizer.ggml.pre']).toBe('llama-bpe');
    const tok = await openTokenizer(hf.path);
    expect(tok.addBos).toBe(true);
    // transformers' GPT2Tokenizer brings its default unk token "<|endoftext|>" and appends it
    // after the file's vocabulary when the file names no unknown token; that id is past the
    // model's embedding, so it is not copied here. Everything else is the same.
    const tokens = hf.metadata['tokenizer.ggml.tokens'] as string[];
    const extra = { id: tokens.length, content: '<|endoftext|>' };
    expect(hf.json.added_tokens).toContainEqual(expect.objectContaining(extra));
    const { decoded } = await expectSameIds(tok, { ...hf, vocab_size: tokens.length });
    texts.forEach((text, i) =>
      expect({ text, decoded: decoded[i] }).toEqual({ text, decoded: text }),
    );
    const theirs = parts(hf.json);
    theirs.added_tokens = (theirs.added_tokens as { id: number }[]).filter(
      (t) => t.id !== extra.id,
    );
    expect(parts(ggufTokenizer(hf.metadata, hf.path).json as typeof hf.json)).toEqual(theirs);
  });

  const itIfSmollm2 = existsSync(smollm2) ? it : it.skip;
  itIfSmollm2('SmolLM2 GGUF (gpt2 byte-level BPE, pre-tokenizer smollm)', async () => {
    const hf = answer.smollm2 as NonNullable<OracleAnswer['smollm2']>;
    expect(hf.metadata['tokenizer.ggml.model']).toBe('gpt2');
    expect(hf.metadata['tokenizer.ggml.pre']).toBe('smollm');
    const tok = await openTokenizer(smollm2);
    // The addon reads the metadata gguf-py reads: the same tokenizer.
    expect(loadTokenizer(smollm2, { ggufMetadata: hf.metadata }).hash).toBe(tok.hash);
    expect(tok).toMatchObject({ bosTokenId: 1, eosTokenId: 2, unkTokenId: 0, addBos: false });
    expect(tok.padTokenId).toBe(hf.pad_token_id);

    // llama.cpp splits each digit off first for `smollm`, as SmolLM2's own tokenizer does;
    // transformers' GGUF loader does not. Ours is llama.cpp's, on every text; it equals plain
    // transformers everywhere except where whitespace precedes a number (two or more whitespace
    // characters, or a space before a non-ASCII numeral whose first byte merges with it).
    const ids = hf.llamacpp_split_raw;
    const { ours, decoded } = await expectSameIds(tok, { ...hf, ids, decoded: hf.decoded }, ids);
    const differ = texts.filter((_, i) => JSON.stringify(ours[i]) !== JSON.stringify(hf.raw[i]));
    expect(differ.length).toBeGreaterThan(0);
    for (const text of differ) expect(text).toMatch(/\s\p{N}/u);
    // Byte-level BPE decodes every text back exactly, except the control tokens skipped.
    texts.forEach((text, i) => {
      if (!/<\|im_start\|>/.test(text)) {
        expect({ text, decoded: decoded[i] }).toEqual({ text, decoded: text });
      }
    });

    const built = ggufTokenizer(hf.metadata, smollm2).json as typeof hf.json;
    expect(built.pre_tokenizer).toEqual({
      type: 'Sequence',
      pretokenizers: [
        { type: 'Digits', individual_digits: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    });
    expect({ ...parts(built), pre_tokenizer: null }).toEqual({
      ...parts(hf.json),
      pre_tokenizer: null,
    });
  });

  it('reports a GGUF without a tokenizer and one the addon cannot read, naming the file', async () => {
    const noTokenizer = join(dir, 'notok', 'model.gguf');
    await expect(openTokenizer(noTokenizer)).rejects.toThrow(
      `${noTokenizer}: GGUF metadata has no tokenizer.ggml.model: the file carries no tokenizer`,
    );
    const garbage = join(dir, 'notok', 'garbage.gguf');
    writeFileSync(garbage, 'GGUF but not really');
    await expect(openTokenizer(garbage)).rejects.toThrow(garbage);
    expect(() => loadTokenizer(noTokenizer)).toThrow(/pass ggufMetadata, or use openTokenizer/);
  });

  it('gives each source its own identity hash, stable across loads', async () => {
    const spmDir = (answer.spm.llama2 as { dir: string }).dir;
    const a = loadTokenizer(spmDir);
    const b = await openTokenizer(spmDir);
    const gguf = await openTokenizer(answer.gguf_llama.path);
    const ggufAgain = loadTokenizer(answer.gguf_llama.path, {
      ggufMetadata: answer.gguf_llama.metadata,
    });
    expect(a.hash).toBe(b.hash);
    expect(gguf.hash).toBe(ggufAgain.hash);
    expect(new Set([a.hash, gguf.hash, loadTokenizer(spmDir, { addBos: false }).hash]).size).toBe(
      3,
    );
  });
});
