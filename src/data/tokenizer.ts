// Tokenization through Hugging Face's own `tokenizers` binding, reading the model directory's
// tokenizer.json and tokenizer_config.json. Special tokens are added here rather than by the
// tokenizer.json post-processor, following tokenizer_config.json's add_bos_token/add_eos_token the
// way transformers' LlamaTokenizer does, so the ids equal `tokenizer(text)["input_ids"]`.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import tokenizers from 'tokenizers';

import { writeFileAtomic } from '../infra/index.js';

export type PaddingSide = 'left' | 'right';

export interface LoadTokenizerOptions {
  /** Pad id; default: the config's pad token, else <unk> (Llama has no pad token). */
  padTokenId?: number;
  paddingSide?: PaddingSide;
  /** Prepend BOS; default: tokenizer_config.json's add_bos_token (true when absent). */
  addBos?: boolean;
  /** Append EOS; default: tokenizer_config.json's add_eos_token (false when absent). */
  addEos?: boolean;
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
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly unkTokenId: number;
  readonly padTokenId: number;
  readonly paddingSide: PaddingSide;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly vocabSize: number;
  /** sha256 of tokenizer.json, tokenizer_config.json and the options that change ids. */
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

type TokenValue = string | { content?: string } | null | undefined;
const tokenContent = (v: TokenValue): string | null =>
  typeof v === 'string' ? v : v && typeof v.content === 'string' ? v.content : null;

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

/** Loads `<modelDir>/tokenizer.json` (+ tokenizer_config.json when present). */
export function loadTokenizer(modelDir: string, options: LoadTokenizerOptions = {}): Tokenizer {
  const tokenizerPath = join(modelDir, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) {
    throw new Error(
      `no tokenizer.json in ${modelDir} (a Hugging Face "fast" tokenizer file is required)`,
    );
  }
  const configPath = join(modelDir, 'tokenizer_config.json');
  const tokenizerBytes = readFileSync(tokenizerPath);
  const configBytes = existsSync(configPath) ? readFileSync(configPath) : Buffer.from('{}');
  const config = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
  const tok = tokenizers.Tokenizer.fromString(tokenizerBytes.toString('utf8'));

  const idOf = (name: string | null): number | null => (name === null ? null : tok.tokenToId(name));
  const bosTokenId = idOf(tokenContent(config.bos_token as TokenValue) ?? '<s>');
  const eosTokenId = idOf(tokenContent(config.eos_token as TokenValue) ?? '</s>');
  const unkTokenId = idOf(tokenContent(config.unk_token as TokenValue) ?? '<unk>');
  if (unkTokenId === null)
    throw new Error(`${tokenizerPath}: the unk token is not in the vocabulary`);
  const configPad = idOf(tokenContent(config.pad_token as TokenValue));
  const padTokenId = options.padTokenId ?? configPad ?? unkTokenId;
  const paddingSide: PaddingSide = options.paddingSide ?? 'right';
  const addBos =
    options.addBos ?? (config.add_bos_token === undefined ? true : config.add_bos_token === true);
  const addEos = options.addEos ?? config.add_eos_token === true;
  if (addBos && bosTokenId === null)
    throw new Error(`${tokenizerPath}: add_bos_token is set but there is no BOS token`);
  if (addEos && eosTokenId === null)
    throw new Error(`${tokenizerPath}: add_eos_token is set but there is no EOS token`);

  const hash = createHash('sha256')
    .update(tokenizerBytes)
    .update('\0')
    .update(configBytes)
    .update('\0')
    .update(JSON.stringify({ padTokenId, paddingSide, addBos, addEos }))
    .digest('hex');

  const encodeRaw = async (text: string): Promise<number[]> =>
    (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
  const encode = async (text: string): Promise<number[]> => {
    const ids = await encodeRaw(text);
    if (addBos) ids.unshift(bosTokenId as number);
    if (addEos) ids.push(eosTokenId as number);
    return ids;
  };

  return {
    bosTokenId,
    eosTokenId,
    unkTokenId,
    padTokenId,
    paddingSide,
    addBos,
    addEos,
    vocabSize: tok.getVocabSize(true),
    hash,
    encode,
    encodeRaw,
    countTokens: async (text) => (await encodeRaw(text)).length,
    decode: (ids, skipSpecialTokens = true) => tok.decode([...ids], skipSpecialTokens),
    encodeBatch: async (texts, maxLength) => {
      const rows = await Promise.all(texts.map((t) => encode(t)));
      return padBatch(rows, { maxLength, padTokenId, paddingSide });
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
