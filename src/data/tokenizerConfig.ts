// tokenizer_config.json: the special tokens and flags transformers reads beside tokenizer.json or
// tokenizer.model. Only the keys that change token ids are read.

import { existsSync, readFileSync } from 'node:fs';

import { TokenizerError } from './tokenizerSource.js';

/** A special token as tokenizer_config.json writes it: a string or an AddedToken object. */
type TokenValue = string | { content?: unknown } | null | undefined;

export interface AddedTokenEntry {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
  normalized: boolean;
}

export interface TokenizerConfig {
  /** The file's bytes ('{}' when there is none): part of the tokenizer's identity. */
  bytes: Buffer;
  /** undefined: the key is absent; null: set to null (no such token). */
  bosToken: string | null | undefined;
  eosToken: string | null | undefined;
  unkToken: string | null | undefined;
  padToken: string | null | undefined;
  addBosToken: boolean | undefined;
  addEosToken: boolean | undefined;
  legacy: boolean | undefined;
  addPrefixSpace: boolean | undefined;
  /** added_tokens_decoder, by id. */
  addedTokens: AddedTokenEntry[];
}

function tokenContent(path: string, key: string, v: TokenValue): string | null | undefined {
  if (v === undefined || v === null) return v;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof v.content === 'string') return v.content;
  throw new TokenizerError(path, `${key} must be a string or an AddedToken object with "content"`);
}

function optionalBool(path: string, config: Record<string, unknown>, key: string) {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') {
    throw new TokenizerError(path, `${key} must be true or false, got ${JSON.stringify(v)}`);
  }
  return v;
}

function addedTokens(path: string, raw: unknown): AddedTokenEntry[] {
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TokenizerError(path, 'added_tokens_decoder must be an object of id -> AddedToken');
  }
  return Object.entries(raw as Record<string, unknown>)
    .map(([key, value]) => {
      const id = Number(key);
      const v = value as Record<string, unknown> | null;
      if (!Number.isInteger(id) || id < 0 || !v || typeof v.content !== 'string') {
        throw new TokenizerError(
          path,
          `added_tokens_decoder["${key}"] must map a token id to an object with a string "content"`,
        );
      }
      return {
        id,
        content: v.content,
        special: v.special === true,
        lstrip: v.lstrip === true,
        rstrip: v.rstrip === true,
        singleWord: v.single_word === true,
        normalized: v.normalized === true,
      };
    })
    .sort((a, b) => a.id - b.id);
}

/** Reads `path` (tokenizer_config.json); a missing file is an empty config. */
export function readTokenizerConfig(path: string): TokenizerConfig {
  const bytes = existsSync(path) ? readFileSync(path) : Buffer.from('{}');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TokenizerError(path, `not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new TokenizerError(path, 'a JSON object was expected');
  }
  return {
    bytes,
    bosToken: tokenContent(path, 'bos_token', config.bos_token as TokenValue),
    eosToken: tokenContent(path, 'eos_token', config.eos_token as TokenValue),
    unkToken: tokenContent(path, 'unk_token', config.unk_token as TokenValue),
    padToken: tokenContent(path, 'pad_token', config.pad_token as TokenValue),
    addBosToken: optionalBool(path, config, 'add_bos_token'),
    addEosToken: optionalBool(path, config, 'add_eos_token'),
    legacy: optionalBool(path, config, 'legacy'),
    addPrefixSpace: optionalBool(path, config, 'add_prefix_space'),
    addedTokens: addedTokens(path, config.added_tokens_decoder),
  };
}
