// The tokenizer a GGUF file describes in its metadata (llama.cpp's `tokenizer.ggml.*` keys), built
// as the fast tokenizer transformers builds from the same file (AutoTokenizer with gguf_file=):
//
// - `gpt2`: byte-level BPE from the tokens and merges; tokens not spelled in GPT-2's byte alphabet
//   are re-spelled byte by byte; the pre-tokenizer is chosen by `tokenizer.ggml.pre`.
// - `llama`: SentencePiece-style BPE (Metaspace, byte fallback) with merges recovered from the
//   token scores when the file lists none.
//
// Control tokens become special added tokens (in a byte-level vocabulary only those spelled in the
// byte alphabet, as transformers does), user-defined tokens plain added tokens; BOS/EOS/UNK/PAD come
// from the ids in the metadata, add_bos/add_eos from its flags (BOS by default for `llama` only).
//
// Two deliberate differences from transformers, both following llama.cpp (which defines these
// keys) and the original Hugging Face tokenizer the file was converted from:
// - `tokenizer.ggml.pre` values that transformers does not know (SmolLM's `smollm` among them) get
//   llama.cpp's split for that name; transformers falls back to plain GPT-2 splitting, which
//   differs only where whitespace precedes a number (a run of two or more whitespace characters,
//   or a space before a non-ASCII numeral such as "½").
// - `tokenizer.ggml.add_space_prefix = false` turns off the "▁" put before the text (transformers
//   ignores the key).
// And one transformers artefact is not copied: for a `gpt2` file that names no unknown token,
// transformers appends GPT2Tokenizer's default "<|endoftext|>" after the vocabulary, an id past the
// model's embedding matrix.

import { generateMerges, type Merge } from './bpeMerges.js';
import {
  AddedTokenTable,
  byteLevel,
  byteLevelBpeJson,
  bytesToUnicode,
  metaspaceBpeJson,
  templateProcessing,
  type BuiltTokenizer,
} from './tokenizerJson.js';
import { TokenizerError } from './tokenizerSource.js';

/** GGUF metadata as key -> value (strings, numbers or bigints, booleans, arrays of them). */
export type GgufMetadata = Readonly<Record<string, unknown>>;

/** llama.cpp's token types (llama_token_type). */
export const GGUF_TOKEN_TYPE = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

export const GGUF_TOKENIZER_MODELS = ['gpt2', 'llama'] as const;

// llama.cpp's pre-tokenizer regexes for the GPT-2 family, as tokenizers pre-tokenizers. GPT-2's own
// pattern is ByteLevel's built-in one.
const GPT2_SPLIT = byteLevel(true);
// \p{N} first, one digit at a time (Digits individual_digits = llama.cpp's "\p{N}" split), then
// GPT-2's pattern: SmolLM, StarCoder and the others llama.cpp groups with them.
const DIGITS_THEN_GPT2 = {
  type: 'Sequence',
  pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)],
};
// Llama 3's pattern (llama.cpp's LLAMA3 regex; transformers' GGUF loader uses the same).
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" +
  '| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const LLAMA3_SPLIT = {
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
    byteLevel(false),
  ],
};

/**
 * `tokenizer.ggml.pre` -> pre-tokenizer, for the values supported here. An absent value or
 * `default` is GPT-2's pattern, as transformers reads it.
 */
export const GGUF_PRE_TOKENIZERS: Readonly<Record<string, unknown>> = {
  default: GPT2_SPLIT,
  gpt2: GPT2_SPLIT,
  'gpt-2': GPT2_SPLIT,
  smollm: DIGITS_THEN_GPT2,
  starcoder: DIGITS_THEN_GPT2,
  refact: DIGITS_THEN_GPT2,
  'command-r': DIGITS_THEN_GPT2,
  codeshell: DIGITS_THEN_GPT2,
  llama3: LLAMA3_SPLIT,
  'llama-v3': LLAMA3_SPLIT,
  'llama-bpe': LLAMA3_SPLIT,
};

/** Typed access to the metadata with errors naming the key and what was expected. */
class MetadataReader {
  constructor(
    private readonly metadata: GgufMetadata,
    private readonly path: string,
  ) {}

  fail(key: string, expected: string, value: unknown): never {
    const got =
      value === undefined
        ? 'it is missing'
        : `got ${Array.isArray(value) ? 'an array' : typeof value}`;
    throw new TokenizerError(this.path, `GGUF metadata ${key}: ${expected} expected, ${got}`);
  }

  string(key: string): string | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : this.fail(key, 'a string', v);
  }

  bool(key: string): boolean | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    return typeof v === 'boolean' ? v : this.fail(key, 'a boolean', v);
  }

  /** A token id: an integer below `vocabSize`. */
  tokenId(key: string, vocabSize: number): number | null {
    const v = this.metadata[key];
    if (v === undefined) return null;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      return this.fail(key, 'a token id (unsigned integer)', v);
    }
    if (n >= vocabSize) {
      throw new TokenizerError(
        this.path,
        `GGUF metadata ${key} = ${n} is not a token id (the vocabulary has ${vocabSize} tokens)`,
      );
    }
    return n;
  }

  strings(key: string): string[] | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return this.fail(key, 'an array of strings', v);
    v.forEach((s, i) => {
      if (typeof s !== 'string') this.fail(`${key}[${i}]`, 'a string', s);
    });
    return v as string[];
  }

  /** A numeric array (a JS array or a typed array) of `length` entries. */
  numbers(key: string, length: number): number[] | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView))) {
      return this.fail(key, 'an array of numbers', v);
    }
    const values = Array.from(v as ArrayLike<unknown>, (x, i) =>
      typeof x === 'number'
        ? x
        : typeof x === 'bigint'
          ? Number(x)
          : this.fail(`${key}[${i}]`, 'a number', x),
    );
    if (values.length !== length) {
      throw new TokenizerError(
        this.path,
        `GGUF metadata ${key} has ${values.length} entries but tokenizer.ggml.tokens has ${length}`,
      );
    }
    return values;
  }
}

function parseMerges(merges: readonly string[], path: string): Merge[] {
  return merges.map((m, i) => {
    const parts = m.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new TokenizerError(
        path,
        `GGUF metadata tokenizer.ggml.merges[${i}] = ${JSON.stringify(m)}: "left right" expected`,
      );
    }
    return parts as Merge;
  });
}

/** A `gpt2` vocabulary: tokens re-spelled into the byte alphabet where needed, the pre-tokenizer. */
function byteLevelVocabulary(meta: MetadataReader, tokens: readonly string[], path: string) {
  const pre = meta.string('tokenizer.ggml.pre') ?? 'default';
  const preTokenizer = GGUF_PRE_TOKENIZERS[pre];
  if (preTokenizer === undefined) {
    throw new TokenizerError(
      path,
      `GGUF metadata tokenizer.ggml.pre = "${pre}" is not supported (supported: ` +
        `${Object.keys(GGUF_PRE_TOKENIZERS).join(', ')})`,
    );
  }
  const rawMerges = meta.strings('tokenizer.ggml.merges');
  if (rawMerges === undefined) {
    return meta.fail('tokenizer.ggml.merges', 'an array of "left right" merges', undefined);
  }
  const spelling = bytesToUnicode();
  const alphabet = new Set(spelling);
  const encoder = new TextEncoder();
  const spelled = tokens.map((t) =>
    [...t].every((ch) => alphabet.has(ch))
      ? t
      : Array.from(encoder.encode(t), (b) => spelling[b] as string).join(''),
  );
  return { spelled, merges: parseMerges(rawMerges, path), preTokenizer };
}

/** A `llama` vocabulary: the file's merges, or merges recovered from the token scores. */
function sentencePieceVocabulary(meta: MetadataReader, tokens: readonly string[], path: string) {
  const rawMerges = meta.strings('tokenizer.ggml.merges');
  if (rawMerges !== undefined) return { merges: parseMerges(rawMerges, path) };
  const scores = meta.numbers('tokenizer.ggml.scores', tokens.length);
  if (scores === undefined) {
    return meta.fail('tokenizer.ggml.scores', 'token scores (or tokenizer.ggml.merges)', undefined);
  }
  const merges = generateMerges(
    new Map(tokens.map((t, id) => [t, id])),
    new Map(tokens.map((t, id) => [t, scores[id] as number])),
  );
  return { merges };
}

/** Builds the tokenizer described by `metadata`; `path` names the GGUF file in errors. */
export function ggufTokenizer(metadata: GgufMetadata, path: string): BuiltTokenizer {
  const meta = new MetadataReader(metadata, path);
  const model = meta.string('tokenizer.ggml.model');
  if (model === undefined) {
    throw new TokenizerError(
      path,
      'GGUF metadata has no tokenizer.ggml.model: the file carries no tokenizer',
    );
  }
  if (!(GGUF_TOKENIZER_MODELS as readonly string[]).includes(model)) {
    throw new TokenizerError(
      path,
      `GGUF tokenizer model "${model}" is not supported (supported: ${GGUF_TOKENIZER_MODELS.join(', ')})`,
    );
  }
  const tokens = meta.strings('tokenizer.ggml.tokens');
  if (tokens === undefined || tokens.length === 0) {
    return meta.fail('tokenizer.ggml.tokens', 'a non-empty array of strings', tokens);
  }
  const n = tokens.length;
  const types = meta.numbers('tokenizer.ggml.token_type', n);
  const isByteLevel = model === 'gpt2';
  const byteLevelParts = isByteLevel ? byteLevelVocabulary(meta, tokens, path) : null;
  const { merges } = byteLevelParts ?? sentencePieceVocabulary(meta, tokens, path);
  // The vocabulary as the BPE model spells it; later duplicates win, as in transformers' dict.
  const spelled = byteLevelParts?.spelled ?? tokens;
  const vocab = new Map(spelled.map((t, id) => [t, id]));

  const added = new AddedTokenTable(vocab);
  const alphabet = new Set(bytesToUnicode());
  tokens.forEach((token, id) => {
    const type = types?.[id];
    if (type === GGUF_TOKEN_TYPE.CONTROL) {
      // A control token spelled outside the byte alphabet is a converter's mislabel: adding it
      // would grow the vocabulary past the model's (transformers skips it too).
      if (!isByteLevel || [...token].every((ch) => alphabet.has(ch))) {
        added.set({ id, content: token, special: true });
      }
    } else if (type === GGUF_TOKEN_TYPE.USER_DEFINED && vocab.has(token)) {
      added.set({ id: vocab.get(token) as number, content: token, special: false });
    }
  });
  const special = (key: string) => {
    const id = meta.tokenId(key, n);
    if (id === null) return null;
    const token = spelled[id] as string;
    return { token, id: added.special(token) };
  };
  const bos = special('tokenizer.ggml.bos_token_id');
  const eos = special('tokenizer.ggml.eos_token_id');
  const unk = special('tokenizer.ggml.unknown_token_id');
  const pad = special('tokenizer.ggml.padding_token_id');

  const addBos = meta.bool('tokenizer.ggml.add_bos_token') ?? !isByteLevel;
  const addEos = meta.bool('tokenizer.ggml.add_eos_token') ?? false;
  if (addBos && bos === null) {
    return meta.fail(
      'tokenizer.ggml.bos_token_id',
      'a BOS token (add_bos_token is set)',
      undefined,
    );
  }
  if (addEos && eos === null) {
    return meta.fail(
      'tokenizer.ggml.eos_token_id',
      'an EOS token (add_eos_token is set)',
      undefined,
    );
  }
  const postProcessor = templateProcessing(addBos ? bos : null, addEos ? eos : null);
  const addedTokens = added.list();
  const json = byteLevelParts
    ? byteLevelBpeJson({
        vocab,
        merges,
        addedTokens,
        postProcessor,
        preTokenizer: byteLevelParts.preTokenizer,
      })
    : metaspaceBpeJson({
        vocab,
        merges,
        addedTokens,
        postProcessor,
        prependScheme: meta.bool('tokenizer.ggml.add_space_prefix') === false ? 'never' : 'first',
      });
  return {
    json,
    bosTokenId: bos?.id ?? null,
    eosTokenId: eos?.id ?? null,
    unkTokenId: unk?.id ?? null,
    padTokenId: pad?.id ?? null,
    addBos,
    addEos,
  };
}
