// The two tokenizer.json shapes built from a vocabulary that comes without one: SentencePiece-style
// BPE ("▁" for spaces, byte fallback: Llama, a tokenizer.model or a GGUF `llama` vocabulary) and
// byte-level BPE (GPT-2's byte alphabet: a GGUF `gpt2` vocabulary). Each is what transformers
// builds for the same vocabulary (LlamaTokenizer, GPT2Tokenizer), written as the JSON that
// `tokenizers` loads, so the npm binding runs the same Rust code on the same definition.

import type { Merge } from './bpeMerges.js';

export const METASPACE = '\u2581';

/** A token matched whole in the text before the model runs (special: skipped when decoding). */
export interface AddedTokenSpec {
  id: number;
  content: string;
  special: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  singleWord?: boolean;
  normalized?: boolean;
}

export type PrependScheme = 'first' | 'always' | 'never';

/** The HF post-processor that puts BOS / EOS around a sequence. */
export function templateProcessing(
  bos: { token: string; id: number } | null,
  eos: { token: string; id: number } | null,
): unknown {
  const special = (t: { token: string }, typeId: number) => ({
    SpecialToken: { id: t.token, type_id: typeId },
  });
  const seq = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const single = [
    ...(bos ? [special(bos, 0)] : []),
    seq('A', 0),
    ...(eos ? [special(eos, 0)] : []),
  ];
  const pair = [
    ...single,
    ...(bos ? [special(bos, 1)] : []),
    seq('B', 1),
    ...(eos ? [special(eos, 1)] : []),
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const t of [bos, eos]) {
    if (t) specialTokens[t.token] = { id: t.token, ids: [t.id], tokens: [t.token] };
  }
  return { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens };
}

function addedTokensJson(tokens: readonly AddedTokenSpec[]): unknown[] {
  return [...tokens]
    .sort((a, b) => a.id - b.id)
    .map((t) => ({
      id: t.id,
      content: t.content,
      single_word: t.singleWord ?? false,
      lstrip: t.lstrip ?? false,
      rstrip: t.rstrip ?? false,
      normalized: t.normalized ?? false,
      special: t.special,
    }));
}

export interface MetaspaceBpeOptions {
  vocab: ReadonlyMap<string, number>;
  merges: readonly Merge[];
  addedTokens: readonly AddedTokenSpec[];
  /** "first" (transformers' default, legacy=false), "always" (legacy=true), "never" (no prefix space). */
  prependScheme: PrependScheme;
  postProcessor: unknown;
}

/** transformers' LlamaTokenizer: no normalizer, Metaspace without split, BPE with byte fallback. */
export function metaspaceBpeJson(options: MetaspaceBpeOptions): unknown {
  const decoders: unknown[] = [
    { type: 'Replace', pattern: { String: METASPACE }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
  ];
  // The space the pre-tokenizer put in front of the text is taken off again.
  if (options.prependScheme !== 'never') {
    decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokensJson(options.addedTokens),
    normalizer: null,
    pre_tokenizer: {
      type: 'Metaspace',
      replacement: METASPACE,
      prepend_scheme: options.prependScheme,
      split: false,
    },
    post_processor: options.postProcessor,
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(options.vocab),
      merges: options.merges,
    },
  };
}

export interface ByteLevelBpeOptions {
  vocab: ReadonlyMap<string, number>;
  merges: readonly Merge[];
  addedTokens: readonly AddedTokenSpec[];
  /** The pre-tokenizer (a ByteLevel one, alone or after a split); see byteLevelPreTokenizer. */
  preTokenizer: unknown;
  postProcessor: unknown;
}

/** ByteLevel pre-tokenizer; with `useRegex` it also splits with GPT-2's own pattern. */
export function byteLevel(useRegex: boolean): unknown {
  return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex };
}

/** transformers' GPT2Tokenizer: byte-level BPE, no unknown token, ByteLevel decoder. */
export function byteLevelBpeJson(options: ByteLevelBpeOptions): unknown {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokensJson(options.addedTokens),
    normalizer: null,
    pre_tokenizer: options.preTokenizer,
    post_processor: options.postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(options.vocab),
      merges: options.merges,
    },
  };
}

let byteAlphabet: string[] | undefined;

/** GPT-2's bytes_to_unicode: each byte as a printable character (index = byte). */
export function bytesToUnicode(): readonly string[] {
  if (byteAlphabet) return byteAlphabet;
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  }
  byteAlphabet = out;
  return out;
}

/** A tokenizer built from a source without tokenizer.json: the JSON and its special tokens. */
export interface BuiltTokenizer {
  json: unknown;
  bosTokenId: number | null;
  eosTokenId: number | null;
  unkTokenId: number | null;
  padTokenId: number | null;
  /** Whether a sequence gets BOS / EOS by default (the post-processor in `json` says the same). */
  addBos: boolean;
  addEos: boolean;
}

/**
 * The added tokens of a vocabulary being built: tokens of the vocabulary marked special or
 * user-defined, and tokens appended after it, with ids assigned the way `tokenizers` assigns them
 * (the next id after the vocabulary and the tokens already appended).
 */
export class AddedTokenTable {
  private readonly byId = new Map<number, AddedTokenSpec>();
  private readonly appended = new Map<string, number>();

  constructor(private readonly vocab: ReadonlyMap<string, number>) {}

  /** The id of `content` in the vocabulary or among the appended tokens. */
  idOf(content: string): number | undefined {
    return this.vocab.get(content) ?? this.appended.get(content);
  }

  get nextId(): number {
    return this.vocab.size + this.appended.size;
  }

  /** Adds or replaces the entry for `spec.id`; an id past the vocabulary must be the next one. */
  set(spec: AddedTokenSpec): void {
    if (spec.id >= this.vocab.size && !this.byId.has(spec.id)) {
      if (spec.id !== this.nextId) {
        throw new RangeError(
          `added token ${JSON.stringify(spec.content)} has id ${spec.id}, but the next free id is ${this.nextId}`,
        );
      }
      this.appended.set(spec.content, spec.id);
    }
    this.byId.set(spec.id, spec);
  }

  /** Marks `content` special, appending it when the vocabulary lacks it; returns its id. */
  special(content: string): number {
    const id = this.idOf(content) ?? this.nextId;
    this.set({ ...(this.byId.get(id) ?? { id, content }), special: true });
    return id;
  }

  list(): AddedTokenSpec[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }
}
