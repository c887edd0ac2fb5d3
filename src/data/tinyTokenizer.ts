// Trains a small SentencePiece-style BPE tokenizer in the Llama family's Hugging Face format, for
// the tiny test model. The npm `tokenizers` binding exposes no configurable trainer, so training
// is done here: plain BPE over "▁"-prefixed words (deterministic: ties broken by code-point order
// of the pair), then tokenizer.json is written the way transformers' LlamaTokenizer builds it
// (Metaspace "first" without split, BPE with byte fallback, <unk>=0 <s>=1 </s>=2, byte tokens
// <0x00>..<0xFF> = 3..258, a post-processor that adds <s>).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../infra/index.js';
import { compareCodePoints } from './clean.js';

export const METASPACE = '\u2581';
const SPECIALS = ['<unk>', '<s>', '</s>'] as const;
const BYTE_TOKENS = Array.from(
  { length: 256 },
  (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
);
const FIRST_LEARNED_ID = SPECIALS.length + BYTE_TOKENS.length; // 259

export interface TrainTinyTokenizerOptions {
  corpus: readonly string[];
  /** Total vocabulary including the 3 specials and 256 byte tokens (e.g. 2000-4000). */
  vocabSize: number;
  outDir: string;
  /** Characters seen fewer times than this fall back to bytes (default 2). */
  minCharFrequency?: number;
  /** Pairs seen fewer times than this are not merged (default 2). */
  minPairFrequency?: number;
  modelMaxLength?: number;
}

export interface TrainedTokenizer {
  vocab: Map<string, number>;
  merges: [string, string][];
}

/** Word frequencies as the tokenizer will see them: spaces become "▁", each word starts with one. */
function wordCounts(corpus: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of corpus) {
    for (const word of text.split(' ')) {
      if (word === '') continue;
      const w = METASPACE + word;
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/** Learns the vocabulary and merges (pure; no files). */
export function trainBpe(
  corpus: readonly string[],
  vocabSize: number,
  minCharFrequency = 2,
  minPairFrequency = 2,
): TrainedTokenizer {
  if (!Number.isInteger(vocabSize) || vocabSize <= FIRST_LEARNED_ID) {
    throw new RangeError(`vocabSize must be an integer > ${FIRST_LEARNED_ID}, got ${vocabSize}`);
  }
  const words = wordCounts(corpus);
  const charCounts = new Map<string, number>();
  for (const [w, n] of words) for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + n);
  charCounts.set(METASPACE, Math.max(charCounts.get(METASPACE) ?? 0, minCharFrequency));
  const alphabet = [...charCounts]
    .filter(([, n]) => n >= minCharFrequency)
    .sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]))
    .map(([ch]) => ch)
    .slice(0, vocabSize - FIRST_LEARNED_ID);

  const vocab = new Map<string, number>();
  [...SPECIALS, ...BYTE_TOKENS, ...alphabet].forEach((t) => vocab.set(t, vocab.size));
  const known = new Set(alphabet);

  // Each word type as a symbol list; characters outside the alphabet are null (never merged,
  // they become bytes at encoding time).
  const types = [...words].map(([w, n]) => ({
    symbols: [...w].map((ch) => (known.has(ch) ? ch : null)) as (string | null)[],
    count: n,
  }));

  const merges: [string, string][] = [];
  while (vocab.size < vocabSize) {
    const pairCounts = new Map<string, number>();
    for (const t of types) {
      for (let i = 0; i + 1 < t.symbols.length; i++) {
        const a = t.symbols[i];
        const b = t.symbols[i + 1];
        if (a === null || a === undefined || b === null || b === undefined) continue;
        const key = `${a}\u0000${b}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + t.count);
      }
    }
    let bestKey: string | null = null;
    let bestCount = 0;
    for (const [key, n] of pairCounts) {
      if (
        n > bestCount ||
        (n === bestCount && bestKey !== null && compareCodePoints(key, bestKey) < 0)
      ) {
        bestKey = key;
        bestCount = n;
      }
    }
    if (bestKey === null || bestCount < minPairFrequency) break;
    const [a, b] = bestKey.split('\u0000') as [string, string];
    const merged = a + b;
    merges.push([a, b]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const t of types) {
      const s = t.symbols;
      const out: (string | null)[] = [];
      for (let i = 0; i < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) {
          out.push(merged);
          i++;
        } else {
          out.push(s[i] as string | null);
        }
      }
      t.symbols = out;
    }
  }
  return { vocab, merges };
}

/** tokenizer.json content in Hugging Face's format for a Llama-family BPE tokenizer. */
export function llamaTokenizerJson(trained: TrainedTokenizer): unknown {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Metaspace',
      replacement: METASPACE,
      prepend_scheme: 'first',
      split: false,
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: METASPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(trained.vocab),
      merges: trained.merges,
    },
  };
}

/** tokenizer_config.json as a Llama checkpoint has it (no pad token: see loadTokenizer). */
export function llamaTokenizerConfig(modelMaxLength: number): unknown {
  const special = (content: string) => ({
    __type: 'AddedToken',
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: special('<s>'),
    eos_token: special('</s>'),
    unk_token: special('<unk>'),
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: modelMaxLength,
    padding_side: 'right',
    tokenizer_class: 'LlamaTokenizer',
  };
}

/** Trains on `corpus` and writes tokenizer.json + tokenizer_config.json into `outDir`. */
export async function trainTinyTokenizer(
  options: TrainTinyTokenizerOptions,
): Promise<{ tokenizerPath: string; configPath: string; vocabSize: number; merges: number }> {
  const trained = trainBpe(
    options.corpus,
    options.vocabSize,
    options.minCharFrequency ?? 2,
    options.minPairFrequency ?? 2,
  );
  await mkdir(options.outDir, { recursive: true });
  const tokenizerPath = join(options.outDir, 'tokenizer.json');
  const configPath = join(options.outDir, 'tokenizer_config.json');
  await writeFileAtomic(tokenizerPath, JSON.stringify(llamaTokenizerJson(trained), null, 2) + '\n');
  await writeFileAtomic(
    configPath,
    JSON.stringify(llamaTokenizerConfig(options.modelMaxLength ?? 2048), null, 2) + '\n',
  );
  return {
    tokenizerPath,
    configPath,
    vocabSize: trained.vocab.size,
    merges: trained.merges.length,
  };
}
