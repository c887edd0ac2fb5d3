// The fast tokenizer transformers builds for a Llama checkpoint that ships only a SentencePiece
// tokenizer.model (LlamaTokenizer from tokenizer.model + tokenizer_config.json): the pieces as the
// vocabulary in id order, merges recovered from it (generateMerges by id), byte fallback,
// Metaspace with the prefix space of add_prefix_space/legacy, control pieces and the configured
// special tokens as special added tokens, user-defined pieces as plain added tokens.
//
// Where transformers and SentencePiece differ, transformers is followed: the model's own
// normalizer (e.g. nmt_nfkc, collapsing whitespace) is not applied, as in LlamaTokenizerFast.
// Where transformers 5 has no answer of its own: absent special tokens default to the model's own
// pieces (trainer_spec ids), and a missing add_bos_token means BOS, as Llama's SentencePiece,
// llama.cpp and transformers 4 do (transformers 5 then adds none).

import { generateMerges } from './bpeMerges.js';
import { PIECE_TYPE, SPM_MODEL_TYPE, type SentencePieceModel } from './sentencePieceModel.js';
import type { TokenizerConfig } from './tokenizerConfig.js';
import {
  AddedTokenTable,
  metaspaceBpeJson,
  templateProcessing,
  type BuiltTokenizer,
  type PrependScheme,
} from './tokenizerJson.js';
import { TokenizerError } from './tokenizerSource.js';

const MODEL_TYPE_NAMES: Record<number, string> = {
  [SPM_MODEL_TYPE.UNIGRAM]: 'Unigram',
  [SPM_MODEL_TYPE.BPE]: 'BPE',
  [SPM_MODEL_TYPE.WORD]: 'word',
  [SPM_MODEL_TYPE.CHAR]: 'char',
};

/** `path` names tokenizer.model in errors; `configPath` names tokenizer_config.json. */
export function sentencePieceTokenizer(
  model: SentencePieceModel,
  config: TokenizerConfig,
  path: string,
  configPath: string,
): BuiltTokenizer {
  const { trainerSpec, pieces } = model;
  if (trainerSpec.modelType !== SPM_MODEL_TYPE.BPE) {
    const name = MODEL_TYPE_NAMES[trainerSpec.modelType] ?? `type ${trainerSpec.modelType}`;
    throw new TokenizerError(
      path,
      `a SentencePiece ${name} model; only BPE models (the Llama family's) are supported`,
    );
  }
  if (!trainerSpec.byteFallback) {
    throw new TokenizerError(
      path,
      'a SentencePiece BPE model trained without byte_fallback; the Llama conversion needs the ' +
        '<0x00>..<0xFF> byte pieces for characters outside the vocabulary',
    );
  }

  const vocab = new Map<string, number>();
  pieces.forEach((p, id) => vocab.set(p.piece, id));
  const merges = generateMerges(vocab);

  const added = new AddedTokenTable(vocab);
  pieces.forEach((p, id) => {
    if (p.type === PIECE_TYPE.CONTROL || p.type === PIECE_TYPE.USER_DEFINED) {
      added.set({ id, content: p.piece, special: p.type === PIECE_TYPE.CONTROL });
    }
  });
  for (const entry of config.addedTokens) {
    const known = added.idOf(entry.content);
    if (entry.id < vocab.size && known !== entry.id) {
      throw new TokenizerError(
        configPath,
        `added_tokens_decoder gives id ${entry.id} to ${JSON.stringify(entry.content)}, but ` +
          `${path} has ${JSON.stringify(pieces[entry.id]?.piece)} there`,
      );
    }
    try {
      added.set(entry);
    } catch (err) {
      throw new TokenizerError(configPath, `added_tokens_decoder: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  const piece = (id: number) =>
    id >= 0 && id < pieces.length ? (pieces[id]?.piece ?? null) : null;
  const name = (configured: string | null | undefined, trainerId: number) =>
    configured === undefined ? piece(trainerId) : configured;
  const specialId = (token: string | null) => (token === null ? null : added.special(token));
  const bosToken = name(config.bosToken, trainerSpec.bosId);
  const eosToken = name(config.eosToken, trainerSpec.eosId);
  const bosTokenId = specialId(bosToken);
  const eosTokenId = specialId(eosToken);
  const unkTokenId = specialId(name(config.unkToken, trainerSpec.unkId));
  const padTokenId = specialId(name(config.padToken, trainerSpec.padId));

  const addBos = config.addBosToken ?? true;
  const addEos = config.addEosToken ?? false;
  if (addBos && bosToken === null) {
    throw new TokenizerError(configPath, 'add_bos_token is set but there is no BOS token');
  }
  if (addEos && eosToken === null) {
    throw new TokenizerError(configPath, 'add_eos_token is set but there is no EOS token');
  }
  const prependScheme: PrependScheme =
    config.addPrefixSpace === false ? 'never' : config.legacy === true ? 'always' : 'first';

  const json = metaspaceBpeJson({
    vocab,
    merges,
    addedTokens: added.list(),
    prependScheme,
    postProcessor: templateProcessing(
      addBos ? { token: bosToken as string, id: bosTokenId as number } : null,
      addEos ? { token: eosToken as string, id: eosTokenId as number } : null,
    ),
  });
  return { json, bosTokenId, eosTokenId, unkTokenId, padTokenId, addBos, addEos };
}
