// Tokenization through Hugging Face's own `tokenizers` binding. The tokenizer comes from the model's
// tokenizer.json (+ tokenizer_config.json), from a SentencePiece tokenizer.model, or from a GGUF
// file's metadata (read by the native addon); the last two are converted to the tokenizer.json
// transformers would build for them (sentencePieceTokenizer.ts, ggufTokenizer.ts). Special tokens
// are added here rather than by the post-processor, following add_bos_token/add_eos_token the way
// transformers does, so the ids equal `tokenizer(text)["input_ids"]`.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import tokenizers from 'tokenizers';

import { writeFileAtomic } from '../infra/index.js';
import { inspectGguf } from '../native.js';
import { ggufTokenizer, type GgufMetadata } from './ggufTokenizer.js';
import { readSentencePieceModel } from './sentencePieceModel.js';
import { sentencePieceTokenizer } from './sentencePieceTokenizer.js';
import { readTokenizerConfig } from './tokenizerConfig.js';
import type { BuiltTokenizer } from './tokenizerJson.js';
import { findTokenizerSource, TokenizerError, type TokenizerSource } from './tokenizerSource.js';

export type PaddingSide = 'left' | 'right';

export interface LoadTokenizerOptions {
  /** Pad id; default: the source's pad token, else its unk token, else EOS. */
  padTokenId?: number;
  paddingSide?: PaddingSide;
  /** Prepend BOS; default: the source's add_bos_token (see each source). */
  addBos?: boolean;
  /** Append EOS; default: the source's add_eos_token (false when absent). */
  addEos?: boolean;
  /** The GGUF file's metadata, when the tokenizer comes from one (openTokenizer reads it). */
  ggufMetadata?: GgufMetadata;
}

export interface EncodedBatch {
  /** batchSize × seqLen, row-major. */
  inputIds: Int32Array;
  attentionMask: Uint8Array;
  batchSize: number;
  seqLen: number;
  /** Real (unpadded) length of each row. */
  lengths: number[];
  /** Rows that were longer than maxLength and cut. */
  truncated: number;
}

export interface Tokenizer {
  /** Where the tokenizer was read from. */
  readonly source: TokenizerSource;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly unkTokenId: number | null;
  readonly padTokenId: number;
  readonly paddingSide: PaddingSide;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly vocabSize: number;
  /**
   * Identity for caches: sha256 of what defines the ids — tokenizer.json + tokenizer_config.json,
   * or (other sources) the kind of source and the tokenizer built from it — and the options.
   */
  readonly hash: string;
  /** Ids with BOS/EOS as configured. */
  encode(text: string): Promise<number[]>;
  /** Ids without any special tokens (for budgeting a piece of a prompt). */
  encodeRaw(text: string): Promise<number[]>;
  /** Number of tokens `text` takes inside a sequence (no special tokens). */
  countTokens(text: string): Promise<number>;
  decode(ids: readonly number[], skipSpecialTokens?: boolean): Promise<string>;
  /** Encodes, truncates each row to maxLength (keeping the start) and pads to the longest row. */
  encodeBatch(texts: readonly string[], maxLength: number): Promise<EncodedBatch>;
}

/** Pads already-encoded rows into flat arrays; rows longer than maxLength keep their start. */
export function padBatch(
  rows: readonly (readonly number[] | Int32Array)[],
  options: { maxLength: number; padTokenId: number; paddingSide: PaddingSide },
): EncodedBatch {
  const { maxLength, padTokenId, paddingSide } = options;
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
  }
  const lengths = rows.map((r) => Math.min(r.length, maxLength));
  const truncated = rows.filter((r) => r.length > maxLength).length;
  const seqLen = Math.max(1, ...lengths);
  const batchSize = rows.length;
  const inputIds = new Int32Array(batchSize * seqLen).fill(padTokenId);
  const attentionMask = new Uint8Array(batchSize * seqLen);
  rows.forEach((row, b) => {
    const n = lengths[b] as number;
    const offset = b * seqLen + (paddingSide === 'left' ? seqLen - n : 0);
    for (let i = 0; i < n; i++) {
      inputIds[offset + i] = row[i] as number;
      attentionMask[offset + i] = 1;
    }
  });
  return { inputIds, attentionMask, batchSize, seqLen, lengths, truncated };
}

/**
 * Loads the tokenizer of `modelPathOrDir`: a model directory (tokenizer.json, else tokenizer.model,
 * else its one .gguf file) or a .gguf file. A GGUF source needs `options.ggufMetadata`.
 */
export function loadTokenizer(
  modelPathOrDir: string,
  options: LoadTokenizerOptions = {},
): Tokenizer {
  const source = findTokenizerSource(modelPathOrDir);
  if (source.kind === 'tokenizer.json') return fromTokenizerJson(source, options);
  const built = buildTokenizer(source, options);
  const json = JSON.stringify(built.json);
  let tok: tokenizers.Tokenizer;
  try {
    tok = tokenizers.Tokenizer.fromString(json);
  } catch (err) {
    throw new TokenizerError(
      source.path,
      `the tokenizer built from this ${source.kind} does not load: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const padTokenId = options.padTokenId ?? built.padTokenId ?? built.unkTokenId ?? built.eosTokenId;
  if (padTokenId === null) {
    throw new TokenizerError(
      source.path,
      'no pad, unk or EOS token to pad with: set model.pad_token_id (padTokenId)',
    );
  }
  const resolved: ResolvedSpecials = {
    bosTokenId: built.bosTokenId,
    eosTokenId: built.eosTokenId,
    unkTokenId: built.unkTokenId,
    padTokenId,
    paddingSide: options.paddingSide ?? 'right',
    addBos: options.addBos ?? built.addBos,
    addEos: options.addEos ?? built.addEos,
  };
  checkSpecials(source, resolved);
  const hash = createHash('sha256')
    .update(`mentallam-tokenizer-v1\0${source.kind}\0`)
    .update(json)
    .update('\0')
    .update(JSON.stringify(resolved))
    .digest('hex');
  return wrap(tok, source, resolved, hash);
}

/**
 * loadTokenizer for any source: when the tokenizer comes from a GGUF file and no `ggufMetadata`
 * is given, the file's metadata is read with the native addon's GGUF reader first.
 */
export async function openTokenizer(
  modelPathOrDir: string,
  options: LoadTokenizerOptions = {},
): Promise<Tokenizer> {
  const source = findTokenizerSource(modelPathOrDir);
  if (source.kind !== 'gguf' || options.ggufMetadata) return loadTokenizer(modelPathOrDir, options);
  const { metadata } = await inspectGguf(source.path);
  return loadTokenizer(source.path, { ...options, ggufMetadata: metadata });
}

function buildTokenizer(source: TokenizerSource, options: LoadTokenizerOptions): BuiltTokenizer {
  if (source.kind === 'tokenizer.model') {
    const configPath = join(dirname(source.path), 'tokenizer_config.json');
    const model = readSentencePieceModel(readFileSync(source.path), source.path);
    return sentencePieceTokenizer(model, readTokenizerConfig(configPath), source.path, configPath);
  }
  if (!options.ggufMetadata) {
    throw new TokenizerError(
      source.path,
      'the tokenizer of a GGUF file is built from its metadata: pass ggufMetadata, or use ' +
        'openTokenizer, which reads it',
    );
  }
  return ggufTokenizer(options.ggufMetadata, source.path);
}

interface ResolvedSpecials {
  bosTokenId: number | null;
  eosTokenId: number | null;
  unkTokenId: number | null;
  padTokenId: number;
  paddingSide: PaddingSide;
  addBos: boolean;
  addEos: boolean;
}

function checkSpecials(source: TokenizerSource, s: ResolvedSpecials): void {
  if (s.addBos && s.bosTokenId === null) {
    throw new TokenizerError(source.path, 'add_bos_token is set but there is no BOS token');
  }
  if (s.addEos && s.eosTokenId === null) {
    throw new TokenizerError(source.path, 'add_eos_token is set but there is no EOS token');
  }
}

/** tokenizer.json (+ tokenizer_config.json when present), as before other sources existed. */
function fromTokenizerJson(source: TokenizerSource, options: LoadTokenizerOptions): Tokenizer {
  const configPath = join(dirname(source.path), 'tokenizer_config.json');
  const tokenizerBytes = readFileSync(source.path);
  const config = readTokenizerConfig(configPath);
  let tok: tokenizers.Tokenizer;
  try {
    tok = tokenizers.Tokenizer.fromString(tokenizerBytes.toString('utf8'));
  } catch (err) {
    throw new TokenizerError(
      source.path,
      `not a loadable tokenizer.json: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const idOf = (name: string | null): number | null => (name === null ? null : tok.tokenToId(name));
  const unkTokenId = idOf(config.unkToken ?? '<unk>');
  if (unkTokenId === null) {
    throw new TokenizerError(source.path, 'the unk token is not in the vocabulary');
  }
  const resolved: ResolvedSpecials = {
    bosTokenId: idOf(config.bosToken ?? '<s>'),
    eosTokenId: idOf(config.eosToken ?? '</s>'),
    unkTokenId,
    padTokenId: options.padTokenId ?? idOf(config.padToken ?? null) ?? unkTokenId,
    paddingSide: options.paddingSide ?? 'right',
    addBos: options.addBos ?? config.addBosToken ?? true,
    addEos: options.addEos ?? config.addEosToken ?? false,
  };
  checkSpecials(source, resolved);
  // Unchanged since the first release, so existing token caches stay valid.
  const hash = createHash('sha256')
    .update(tokenizerBytes)
    .update('\0')
    .update(config.bytes)
    .update('\0')
    .update(
      JSON.stringify({
        padTokenId: resolved.padTokenId,
        paddingSide: resolved.paddingSide,
        addBos: resolved.addBos,
        addEos: resolved.addEos,
      }),
    )
    .digest('hex');
  return wrap(tok, source, resolved, hash);
}

function wrap(
  tok: tokenizers.Tokenizer,
  source: TokenizerSource,
  s: ResolvedSpecials,
  hash: string,
): Tokenizer {
  const encodeRaw = async (text: string): Promise<number[]> =>
    (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
  const encode = async (text: string): Promise<number[]> => {
    const ids = await encodeRaw(text);
    if (s.addBos) ids.unshift(s.bosTokenId as number);
    if (s.addEos) ids.push(s.eosTokenId as number);
    return ids;
  };
  return {
    source,
    ...s,
    vocabSize: tok.getVocabSize(true),
    hash,
    encode,
    encodeRaw,
    countTokens: async (text) => (await encodeRaw(text)).length,
    decode: (ids, skipSpecialTokens = true) => tok.decode([...ids], skipSpecialTokens),
    encodeBatch: async (texts, maxLength) => {
      const rows = await Promise.all(texts.map((t) => encode(t)));
      return padBatch(rows, { maxLength, padTokenId: s.padTokenId, paddingSide: s.paddingSide });
    },
  };
}

export interface TokenCacheKey {
  datasetHash: string;
  tokenizerHash: string;
  template: string;
  maxLength: number;
  /** Anything else that changes the ids, e.g. the truncation strategy. */
  variant?: string;
}

const CACHE_FORMAT = 'mentallam-tokens-v1';

/** File-name-safe key: sha256 over the four inputs that determine the token ids. */
export function tokenCacheKey(key: TokenCacheKey): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        CACHE_FORMAT,
        key.datasetHash,
        key.tokenizerHash,
        key.template,
        key.maxLength,
        key.variant ?? '',
      ]),
    )
    .digest('hex');
}

/**
 * Returns token-id rows for `texts`, from `<cacheDir>/<key>.bin` + `<key>.json` when present and
 * consistent, otherwise computing them with `compute` and storing them. The .bin file is the rows'
 * ids concatenated as little-endian int32; the .json holds the row lengths and the key inputs.
 */
export async function cachedTokenRows(
  cacheDir: string,
  key: TokenCacheKey,
  count: number,
  compute: () => Promise<(readonly number[])[]>,
): Promise<{ rows: Int32Array[]; hit: boolean; key: string }> {
  const name = tokenCacheKey(key);
  const binPath = join(cacheDir, `${name}.bin`);
  const metaPath = join(cacheDir, `${name}.json`);
  if (existsSync(binPath) && existsSync(metaPath)) {
    try {
      const meta = JSON.parse(await readFile(metaPath, 'utf8')) as {
        lengths: number[];
        format: string;
      };
      const buf = await readFile(binPath);
      const total = meta.lengths.reduce((a, b) => a + b, 0);
      if (
        meta.format === CACHE_FORMAT &&
        meta.lengths.length === count &&
        buf.byteLength === total * 4
      ) {
        const all = new Int32Array(total);
        for (let i = 0; i < total; i++) all[i] = buf.readInt32LE(i * 4);
        const rows: Int32Array[] = [];
        let offset = 0;
        for (const n of meta.lengths) {
          rows.push(all.subarray(offset, offset + n));
          offset += n;
        }
        return { rows, hit: true, key: name };
      }
    } catch {
      // A torn or foreign cache file is recomputed, never trusted.
    }
  }
  const computed = await compute();
  if (computed.length !== count)
    throw new Error(`expected ${count} token rows, got ${computed.length}`);
  const lengths = computed.map((r) => r.length);
  const total = lengths.reduce((a, b) => a + b, 0);
  const buf = Buffer.alloc(total * 4);
  let offset = 0;
  for (const row of computed) for (const id of row) buf.writeInt32LE(id, offset++ * 4);
  await mkdir(cacheDir, { recursive: true });
  await writeFileAtomic(binPath, buf);
  await writeFileAtomic(metaPath, JSON.stringify({ format: CACHE_FORMAT, ...key, lengths }) + '\n');
  return { rows: computed.map((r) => Int32Array.from(r)), hit: false, key: name };
}
