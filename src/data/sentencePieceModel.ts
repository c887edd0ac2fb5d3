// Reads a SentencePiece `tokenizer.model` (a serialized sentencepiece.ModelProto, protobuf v2).
// protobufjs decodes it against the part of sentencepiece_model.proto the tokenizer needs; field
// numbers and defaults are the .proto's own. Unknown fields (training options, the self-test data,
// extensions) are skipped by the decoder.

import protobuf from 'protobufjs/light.js';

import { TokenizerError } from './tokenizerSource.js';

/** SentencePiece.Type in sentencepiece_model.proto. */
export const PIECE_TYPE = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** TrainerSpec.ModelType in sentencepiece_model.proto. */
export const SPM_MODEL_TYPE = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePiece {
  piece: string;
  score: number;
  type: number;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: {
    modelType: number;
    byteFallback: boolean;
    unkId: number;
    bosId: number;
    eosId: number;
    padId: number;
  };
  normalizerSpec: {
    name: string;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
  };
}

const int32 = (id: number, defaultValue?: number) => ({
  type: 'int32',
  id,
  ...(defaultValue === undefined ? {} : { options: { default: defaultValue } }),
});

const root = protobuf.Root.fromJSON({
  nested: {
    ModelProto: {
      fields: {
        pieces: { rule: 'repeated', type: 'SentencePiece', id: 1 },
        trainerSpec: { type: 'TrainerSpec', id: 2 },
        normalizerSpec: { type: 'NormalizerSpec', id: 3 },
      },
      nested: {
        SentencePiece: {
          fields: {
            piece: { type: 'string', id: 1 },
            score: { type: 'float', id: 2 },
            type: int32(3, PIECE_TYPE.NORMAL),
          },
        },
      },
    },
    TrainerSpec: {
      fields: {
        modelType: int32(3, SPM_MODEL_TYPE.UNIGRAM),
        byteFallback: { type: 'bool', id: 35 },
        unkId: int32(40, 0),
        bosId: int32(41, 1),
        eosId: int32(42, 2),
        padId: int32(43, -1),
      },
    },
    NormalizerSpec: {
      fields: {
        name: { type: 'string', id: 1 },
        addDummyPrefix: { type: 'bool', id: 3, options: { default: true } },
        removeExtraWhitespaces: { type: 'bool', id: 4, options: { default: true } },
      },
    },
  },
});
const ModelProto = root.lookupType('ModelProto');

function defaultsOf<T>(typeName: string): T {
  const type = root.lookupType(typeName);
  return type.toObject(type.create(), { defaults: true }) as T;
}

/** Decodes `bytes`; `path` names the file in errors. */
export function readSentencePieceModel(bytes: Uint8Array, path: string): SentencePieceModel {
  let decoded: protobuf.Message;
  try {
    decoded = ModelProto.decode(bytes);
  } catch (err) {
    throw new TokenizerError(
      path,
      `not a SentencePiece model (protobuf ModelProto expected): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const object = ModelProto.toObject(decoded, { defaults: true }) as Partial<SentencePieceModel>;
  // An absent sub-message decodes as null; its fields then take the .proto's defaults.
  const model: SentencePieceModel = {
    pieces: object.pieces ?? [],
    trainerSpec: object.trainerSpec ?? defaultsOf<SentencePieceModel['trainerSpec']>('TrainerSpec'),
    normalizerSpec:
      object.normalizerSpec ?? defaultsOf<SentencePieceModel['normalizerSpec']>('NormalizerSpec'),
  };
  if (model.pieces.length === 0) {
    throw new TokenizerError(
      path,
      'a SentencePiece model with no pieces (an empty or foreign file?)',
    );
  }
  model.pieces.forEach((p, i) => {
    if (p.piece === '') throw new TokenizerError(path, `piece ${i} is empty`);
  });
  return model;
}
